package controller

import (
	"context"
	"errors"
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/operators/controlplane/crdbundle"
)

// ReleaseCRDsURL is where the engine publishes its CRD bundle for a version;
// used when spec.crds.http is not set.
func ReleaseCRDsURL(version string) string {
	return "https://github.com/karmada-io/karmada/releases/download/" + version + "/crds.tar.gz"
}

// reconcileCRDs downloads the CRD bundle (or takes it from the cache),
// applies every CRD to the federation API server and waits until they are
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

	var pending []string
	for _, crd := range bundle.CRDs {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(crd)
		if err != nil {
			return proceed, err
		}
		u := &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(u.Object, "status")
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		if err := s.fed.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			s.blocked(cond, marinav1alpha1.ReasonInvalidContent, fmt.Sprintf("apply CRD %s from %s: %v", crd.Name, src.URL, err))
			return retryAfter(r.RetryAfter), nil
		}
		got := &apiextensionsv1.CustomResourceDefinition{}
		if err := s.fed.Get(ctx, client.ObjectKey{Name: crd.Name}, got); err != nil && !apierrors.IsNotFound(err) {
			return proceed, err
		}
		if !established(got) {
			pending = append(pending, crd.Name)
		}
	}
	if len(pending) > 0 {
		s.blocked(cond, marinav1alpha1.ReasonProgressing, fmt.Sprintf("%d of %d CRDs are not established yet, such as %s", len(pending), len(bundle.CRDs), pending[0]))
		return retryAfter(probeInterval), nil
	}
	s.done(cond, fmt.Sprintf("%d CRDs from %s (sha256 %s)", len(bundle.CRDs), src.URL, bundle.SHA256))
	return proceed, nil
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}
