package controller

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/operators/controlplane/component/crds"
	"github.com/marina-platform/marina/operators/controlplane/crdbundle"
	"github.com/marina-platform/marina/operators/controlplane/engine"
)

// reconcileCRDs downloads the CRD bundle (or takes it from the cache),
// applies every CRD to the federation API server, its conversion patches
// filled for the control plane's webhook, and waits until they are
// established. A new version's bundle updates the CRDs in place; CRDs the
// new bundle lacks are kept, because deleting a CRD deletes its objects.
func (r *Reconciler) reconcileCRDs(ctx context.Context, s *scope) (result, error) {
	const cond = marinav1alpha1.ConditionCRDsReady
	cp := s.cp
	// Without spec.crds.http, the engine's own release asset.
	src := crdbundle.Source{URL: engine.ReleaseCRDsURL(cp.Spec.Version)}
	if h := cp.Spec.CRDs.HTTP; h != nil {
		src = crdbundle.Source{URL: h.URL, SHA256: h.SHA256, ProxyURL: h.ProxyURL}
	}
	// The download runs on its own; it wakes this stage when it is over.
	bundle, err := r.CRDs.Start(src, cp.Spec.CRDs.Policy == marinav1alpha1.CRDPolicyAlways, client.ObjectKeyFromObject(cp).String())
	if errors.Is(err, crdbundle.ErrPending) {
		s.blocked(cond, marinav1alpha1.ReasonProgressing, fmt.Sprintf("downloading the CRD bundle from %s", src.URL))
		return waitForChange(), nil
	}
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
		// webhook, so the bundle's conversion patches point at it once it
		// serves (its Deployment's status wakes this stage); until then
		// they are left out, so that reads of either version never wait
		// on a webhook that is not there yet.
		serving, err := r.deploymentServes(ctx, cp, cp.Name+"-webhook")
		if err != nil {
			return proceed, err
		}
		if serving {
			ca, problem := caBundle(s, cp.Name+"-webhook-tls", "the CRDs' conversion webhook")
			if problem != "" {
				s.blocked(cond, marinav1alpha1.ReasonInvalidSecret, problem)
				return retryAfter(r.RetryAfter), nil
			}
			v.Conversion = &crdbundle.Conversion{Service: cp.Name + "-webhook", Namespace: cp.Namespace, CABundle: ca}
		}
	}
	msg := fmt.Sprintf("%d CRDs from %s (sha256 %s)", len(bundle.CRDs), src.URL, bundle.SHA256)
	if v.StandInCluster {
		msg += " and Marina's stand-in Cluster CRD (the aggregated API server is off)"
	}
	key := crdsKey(src, bundle, v)
	if r.crdsUnchanged(ctx, s, key) {
		s.done(cond, msg)
		return proceed, nil
	}
	applied, err := crds.Deploy(ctx, s.fed, FieldManager, v)
	switch {
	case err == nil:
	case errors.Is(err, crdbundle.ErrContent) || apierrors.IsInvalid(err):
		s.blocked(cond, marinav1alpha1.ReasonInvalidContent, fmt.Sprintf("CRD bundle %s: %v", src.URL, err))
		return retryAfter(r.RetryAfter), nil
	case errors.Is(err, crds.ErrStandInInTheWay):
		s.blocked(cond, marinav1alpha1.ReasonConflict, err.Error())
		return retryAfter(r.RetryAfter), nil
	default:
		s.blocked(cond, marinav1alpha1.ReasonAPIServerUnavailable, fmt.Sprintf("install the CRDs in the federation API server: %v", err))
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
	r.crdsApplied.Store(cp.UID, appliedCRDs{key: key, names: crdNames(applied)})
	s.done(cond, msg)
	return proceed, nil
}

// appliedCRDs is what the CRD stage last applied to a control plane and
// found established: the key of its inputs and the CRDs' names.
type appliedCRDs struct {
	key   [32]byte
	names []string
}

// crdsKey identifies the inputs of the CRD stage: the same key means the
// same objects to apply.
func crdsKey(src crdbundle.Source, b *crdbundle.Bundle, v crds.Values) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%t\n%v\n", src.URL, b.SHA256, v.StandInCluster, v.Labels)
	if c := v.Conversion; c != nil {
		fmt.Fprintf(h, "%s\n%s\n%x\n", c.Service, c.Namespace, sha256.Sum256(c.CABundle))
	}
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

// crdsUnchanged says whether the stage applied these very inputs before
// and the CRDs are all still there and established: then one list of the
// control plane's CRDs replaces applying and reading each of them.
func (r *Reconciler) crdsUnchanged(ctx context.Context, s *scope, key [32]byte) bool {
	last, ok := r.crdsApplied.Load(s.cp.UID)
	if !ok || last.(appliedCRDs).key != key {
		return false
	}
	list := &apiextensionsv1.CustomResourceDefinitionList{}
	if err := s.fed.List(ctx, list, client.MatchingLabels(federationLabels(s.cp, "crds"))); err != nil {
		return false
	}
	have := map[string]bool{}
	for i := range list.Items {
		if crds.Established(&list.Items[i]) && list.Items[i].DeletionTimestamp.IsZero() {
			have[list.Items[i].Name] = true
		}
	}
	want := last.(appliedCRDs).names
	if len(have) != len(want) {
		return false
	}
	for _, n := range want {
		if !have[n] {
			return false
		}
	}
	return true
}

func crdNames(list []*apiextensionsv1.CustomResourceDefinition) []string {
	names := make([]string, len(list))
	for i, c := range list {
		names[i] = c.Name
	}
	return names
}

// caBundle returns the CA that signed a serving certificate Secret, or a
// problem a person can act on when the issuer does not publish it.
func caBundle(s *scope, secret, user string) (ca []byte, problem string) {
	sec, ok := s.secrets[secret]
	if !ok {
		return nil, fmt.Sprintf("Secret %s is not issued yet", secret)
	}
	if len(sec.Data["ca.crt"]) == 0 {
		return nil, fmt.Sprintf("Secret %s has no ca.crt, so the federation API server cannot trust %s: its issuer does not publish its CA; use spec.certificates.caSecretRef or an issuer that sets ca.crt", secret, user)
	}
	return sec.Data["ca.crt"], ""
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
