package controller

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/operators/controlplane/component/crds"
	"github.com/marina-platform/marina/operators/controlplane/crdbundle"
	"github.com/marina-platform/marina/operators/controlplane/engine"
)

// ReleaseCRDsURL is where the engine publishes its CRD bundle for a version;
// used when spec.crds.http is not set.
func ReleaseCRDsURL(version string) string { return engine.ReleaseCRDsURL(version) }

// reconcileCRDs downloads the CRD bundle (or takes it from the cache),
// applies every CRD to the federation API server, its conversion patches
// filled for the control plane's webhook, and waits until they are
// established. A new version's bundle updates the CRDs in place; CRDs the
// new bundle lacks are kept, because deleting a CRD deletes its objects.
func (r *Reconciler) reconcileCRDs(ctx context.Context, s *scope) (result, error) {
	const cond = marinav1alpha1.ConditionCRDsReady
	cp := s.cp
	src := crdbundle.Source{URL: ReleaseCRDsURL(cp.Spec.Version)}
	if h := cp.Spec.CRDs.HTTP; h != nil {
		src = crdbundle.Source{URL: h.URL, SHA256: h.SHA256, ProxyURL: h.ProxyURL}
	}
	bundle, err := r.CRDs.Fetch(ctx, src, cp.Spec.CRDs.Policy != marinav1alpha1.CRDPolicyAlways)
	if err != nil {
		reason := marinav1alpha1.ReasonDownloadFailed
		switch {
		case errors.Is(err, crdbundle.ErrChecksum):
			reason = marinav1alpha1.ReasonChecksumMismatch
		case errors.Is(err, crdbundle.ErrContent):
			reason = marinav1alpha1.ReasonInvalidContent
		}
		s.blocked(cond, reason, fmt.Sprintf("CRD bundle (spec.crds.http): %v", err))
		return retryAfter(r.RetryAfter), nil
	}

	v := crds.Values{
		Bundle:         bundle,
		StandInCluster: !isEnabled(cp, "aggregatedAPIServer"),
		Labels:         federationLabels(cp, "crds"),
	}
	if isEnabled(cp, "webhook") {
		// ResourceBindings of v1alpha1 and v1alpha2 convert through the
		// webhook, so the bundle's conversion patches point at it.
		sec, ok := s.secrets[cp.Name+"-webhook-tls"]
		if !ok || len(sec.Data["ca.crt"]) == 0 {
			s.blocked(cond, marinav1alpha1.ReasonCertificateNotReady, fmt.Sprintf("waiting for Secret %s-webhook-tls, the webhook's CA for the CRDs' conversion", cp.Name))
			return waitForChange(), nil
		}
		v.Conversion = &crdbundle.Conversion{Service: cp.Name + "-webhook", Namespace: cp.Namespace, CABundle: sec.Data["ca.crt"]}
	}
	applied, err := crds.Deploy(ctx, s.fed, FieldManager, v)
	if err != nil {
		reason := marinav1alpha1.ReasonAPIServerUnavailable
		if errors.Is(err, crdbundle.ErrContent) || apierrors.IsInvalid(err) {
			reason = marinav1alpha1.ReasonInvalidContent
		}
		s.blocked(cond, reason, fmt.Sprintf("CRD bundle %s: %v", src.URL, err))
		return retryAfter(r.RetryAfter), nil
	}
	pending, err := crds.Pending(ctx, s.fed, applied, v.StandInCluster)
	if err != nil {
		return proceed, err
	}
	if len(pending) > 0 {
		s.blocked(cond, marinav1alpha1.ReasonProgressing, fmt.Sprintf("%d of %d CRDs are not established yet, such as %s", len(pending), len(applied), pending[0]))
		return retryAfter(probeInterval), nil
	}
	msg := fmt.Sprintf("%d CRDs from %s (sha256 %s)", len(bundle.CRDs), src.URL, bundle.SHA256)
	if v.StandInCluster {
		msg += " and Marina's stand-in Cluster CRD (the aggregated API server is off)"
	}
	s.done(cond, msg)
	return proceed, nil
}

// federationLabels mark what the operator makes inside a control plane's
// API server, so that it removes exactly that.
func federationLabels(cp *marinav1alpha1.ControlPlane, component string) map[string]string {
	return map[string]string{
		labelManagedBy:                   "marina",
		labelComponent:                   component,
		marinav1alpha1.LabelControlPlane: cp.Name,
	}
}
