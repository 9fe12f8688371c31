package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

// outcome is one pass over one control plane.
type outcome struct {
	// applied objects are in place with the set's content.
	applied int
	// drifted were found changed by someone else: restored (Correct) or
	// left and reported (Report).
	drifted []string
	// notServed are objects of kinds the control plane does not serve.
	notServed []string
	// failed are objects the control plane refused, with its reason.
	failed []string
	// pruned are objects deleted because they left the set.
	pruned []string
}

func (o outcome) complete() bool { return len(o.notServed) == 0 && len(o.failed) == 0 }

// selector picks a PolicySet's objects in a control plane.
func selector(ps *marinav1alpha1.PolicySet) client.MatchingLabels {
	return client.MatchingLabels{marinav1alpha1.LabelPolicySet: ps.Name, marinav1alpha1.LabelPolicySetNamespace: ps.Namespace}
}

// apply puts the set into one control plane with server-side apply, one
// field manager for all. sameRevision says the control plane already had
// this set in full: a change found now was made by someone else, which
// Report leaves in place. An object the control plane refuses, or whose
// kind it does not serve, is recorded and the others go on.
func (r *Reconciler) apply(ctx context.Context, c client.Client, ps *marinav1alpha1.PolicySet, set *objectSet, sameRevision bool) outcome {
	var out outcome
	report := ps.Spec.DriftMode == marinav1alpha1.DriftModeReport
	for _, desired := range set.objects {
		o := desired.DeepCopy()
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		for k, v := range selector(ps) {
			labels[k] = v
		}
		o.SetLabels(labels)
		name := describe(o)

		namespaced, err := c.IsObjectNamespaced(o)
		if err != nil {
			if meta.IsNoMatchError(err) {
				out.notServed = append(out.notServed, name)
			} else {
				out.failed = append(out.failed, fmt.Sprintf("%s: %v", name, err))
			}
			continue
		}
		if namespaced && o.GetNamespace() == "" {
			out.failed = append(out.failed, name+": a namespaced kind needs metadata.namespace")
			continue
		}
		if !namespaced && o.GetNamespace() != "" {
			out.failed = append(out.failed, name+": a cluster-scoped kind takes no metadata.namespace")
			continue
		}

		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		err = c.Get(ctx, client.ObjectKeyFromObject(o), live)
		exists := err == nil
		if err != nil && !apierrors.IsNotFound(err) {
			out.failed = append(out.failed, fmt.Sprintf("%s: %v", name, err))
			continue
		}

		if exists {
			// One object, one PolicySet: two that define it would take it
			// from each other on every pass.
			l := live.GetLabels()
			if n, nsp := l[marinav1alpha1.LabelPolicySet], l[marinav1alpha1.LabelPolicySetNamespace]; n != "" && (n != ps.Name || nsp != ps.Namespace) && appliedBy(live, FieldManager) {
				out.failed = append(out.failed, fmt.Sprintf("%s: PolicySet %s/%s applies it already; define it in one PolicySet only", name, nsp, n))
				continue
			}
		}
		if sameRevision && report {
			// Report: see what an apply would change, and change nothing.
			if !exists {
				out.drifted = append(out.drifted, name+" (deleted)")
				continue
			}
			dry := o.DeepCopy()
			if err := c.Patch(ctx, dry, client.Apply, client.FieldOwner(FieldManager), client.ForceOwnership, client.DryRunAll); err != nil {
				out.failed = append(out.failed, fmt.Sprintf("%s: %v", name, err))
				continue
			}
			if differs(live, dry) {
				out.drifted = append(out.drifted, name)
			} else {
				out.applied++
			}
			continue
		}

		if err := c.Patch(ctx, o, client.Apply, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			if meta.IsNoMatchError(err) {
				out.notServed = append(out.notServed, name)
			} else {
				out.failed = append(out.failed, fmt.Sprintf("%s: %v", name, err))
			}
			continue
		}
		out.applied++
		// The API server writes nothing for an apply that changes nothing,
		// so on a set the control plane already had, a new resourceVersion
		// means someone had changed the object, and a missing object that
		// someone deleted it: put back now.
		switch {
		case sameRevision && !exists:
			out.drifted = append(out.drifted, name+" (deleted)")
		case sameRevision && o.GetResourceVersion() != live.GetResourceVersion():
			out.drifted = append(out.drifted, name)
		}
	}
	return out
}

// differs says whether an apply's dry-run result differs from the live
// object in anything but what the server keeps for itself.
func differs(live, applied *unstructured.Unstructured) bool {
	strip := func(u *unstructured.Unstructured) map[string]any {
		m := u.DeepCopy().Object
		for _, f := range []string{"managedFields", "resourceVersion", "generation"} {
			unstructured.RemoveNestedField(m, "metadata", f)
		}
		return m
	}
	return !equality.Semantic.DeepEqual(strip(live), strip(applied))
}

// prune deletes, in one control plane, the objects this PolicySet applied
// that are not in keep (nil keeps nothing). Only objects that carry the
// PolicySet's labels and whose fields this operator applied are candidates:
// an object someone else made is never deleted, whatever its labels.
func (r *Reconciler) prune(ctx context.Context, c client.Client, ps *marinav1alpha1.PolicySet, kinds []string, keep map[string]bool) ([]string, error) {
	var pruned []string
	for _, k := range kinds {
		gvk, ok := parseKind(k)
		if !ok {
			continue
		}
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(ctx, list, selector(ps)); err != nil {
			if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
				continue // the kind is gone, and its objects with it
			}
			return pruned, fmt.Errorf("list %s: %w", gvk.Kind, err)
		}
		for i := range list.Items {
			o := &list.Items[i]
			if keep[objectKey(o)] || !appliedBy(o, FieldManager) || !o.GetDeletionTimestamp().IsZero() {
				continue
			}
			if err := c.Delete(ctx, o, client.PropagationPolicy("Background")); client.IgnoreNotFound(err) != nil {
				return pruned, fmt.Errorf("delete %s: %w", describe(o), err)
			}
			pruned = append(pruned, describe(o))
		}
	}
	return pruned, nil
}

// appliedBy says whether manager applied fields of o.
func appliedBy(o *unstructured.Unstructured, manager string) bool {
	return slices.ContainsFunc(o.GetManagedFields(), func(f metav1.ManagedFieldsEntry) bool {
		return f.Manager == manager && f.Operation == "Apply"
	})
}

// kindOf is the group/version/Kind string AppliedKinds holds.
func kindOf(u *unstructured.Unstructured) string {
	gvk := u.GroupVersionKind()
	return gvk.GroupVersion().String() + "/" + gvk.Kind
}

func parseKind(s string) (schema.GroupVersionKind, bool) {
	i := strings.LastIndex(s, "/")
	if i < 0 {
		return schema.GroupVersionKind{}, false
	}
	gv, err := schema.ParseGroupVersion(s[:i])
	if err != nil {
		return schema.GroupVersionKind{}, false
	}
	return gv.WithKind(s[i+1:]), true
}
