package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	// applied objects are in place with the set's content; changed of
	// them were created or updated by this pass for a new revision.
	applied, changed int
	// drifted were found changed by someone else: restored (Correct) or
	// left and reported (Report).
	drifted []string
	// notServed are objects of kinds the control plane does not serve.
	notServed []string
	// failed are objects the control plane refused, with its reason.
	failed []string
	// forbidden are objects the sync operator's user may not write there.
	forbidden []string
	// pruned are objects deleted because they left the set.
	pruned []string
}

func (o outcome) complete() bool {
	return len(o.notServed) == 0 && len(o.failed) == 0 && len(o.forbidden) == 0
}

// refuse records an object the control plane refused: a refusal of RBAC
// apart, since a person fixes it by granting, not by editing the set.
func (o *outcome) refuse(name string, err error) {
	if apierrors.IsForbidden(err) {
		o.forbidden = append(o.forbidden, name)
		return
	}
	o.failed = append(o.failed, fmt.Sprintf("%s: %v", name, err))
}

// selector picks a PolicySet's objects in a control plane.
func selector(ps *marinav1alpha1.PolicySet) client.MatchingLabels {
	return client.MatchingLabels{marinav1alpha1.LabelPolicySet: ps.Name, marinav1alpha1.LabelPolicySetNamespace: ps.Namespace}
}

// apply puts the set into one control plane with server-side apply, one
// field manager for all. sameRevision says the control plane already had
// this set in full: a change found now was made by someone else, which
// Report leaves in place. An object the control plane refuses, or whose
// kind it does not serve, is recorded and the others go on.
func (r *Reconciler) apply(ctx context.Context, tg target, ps *marinav1alpha1.PolicySet, set *objectSet, sameRevision bool) outcome {
	var out outcome
	c := tg.c
	report := ps.Spec.DriftMode == marinav1alpha1.DriftModeReport
	for i, desired := range set.labelled {
		key, hash := set.keys[i], set.hashes[i]
		if e, ok := tg.memo.get(key); ok && e.hash == hash {
			if rv, exists, known := tg.watch.live(desired.GroupVersionKind(), desired.GetNamespace(), desired.GetName()); known && exists && rv == e.rv {
				out.applied++
				continue
			}
		}
		o := desired.DeepCopy()
		name := describe(o)

		namespaced, err := c.IsObjectNamespaced(o)
		if err != nil {
			if meta.IsNoMatchError(err) {
				out.notServed = append(out.notServed, name)
			} else {
				out.refuse(name, err)
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
			out.refuse(name, err)
			continue
		}
		// Whatever happens next, what was remembered no longer holds.
		tg.memo.drop(key)

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
				out.refuse(name, err)
				continue
			}
			if differs(live, dry) {
				out.drifted = append(out.drifted, name)
			} else {
				out.applied++
				tg.memo.put(key, memoEntry{hash: hash, rv: live.GetResourceVersion()})
			}
			continue
		}

		if err := c.Patch(ctx, o, client.Apply, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			if meta.IsNoMatchError(err) {
				out.notServed = append(out.notServed, name)
			} else {
				out.refuse(name, err)
			}
			continue
		}
		out.applied++
		tg.memo.put(key, memoEntry{hash: hash, rv: o.GetResourceVersion()})
		// The API server writes nothing for an apply that changes nothing,
		// so on a set the control plane already had, a new resourceVersion
		// means someone had changed the object, and a missing object that
		// someone deleted it: put back now.
		switch {
		case sameRevision && !exists:
			out.drifted = append(out.drifted, name+" (deleted)")
		case sameRevision && o.GetResourceVersion() != live.GetResourceVersion():
			out.drifted = append(out.drifted, name)
		case !exists || o.GetResourceVersion() != live.GetResourceVersion():
			out.changed++
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
func (r *Reconciler) prune(ctx context.Context, tg target, ps *marinav1alpha1.PolicySet, kinds []string, keep map[string]bool) ([]string, error) {
	c := tg.c
	var pruned []string
	for _, k := range kinds {
		gvk, ok := parseKind(k)
		if !ok {
			continue
		}
		// The watch's store holds exactly the labelled objects; the API
		// server is asked only while it has not listed them yet.
		items, cached := tg.watch.list(gvk, selector(ps))
		if !cached {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
			if err := c.List(ctx, list, selector(ps)); err != nil {
				if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
					continue // the kind is gone, and its objects with it
				}
				return pruned, fmt.Errorf("list %s: %w", gvk.Kind, err)
			}
			for i := range list.Items {
				items = append(items, &list.Items[i])
			}
		}
		for _, o := range items {
			o := o.DeepCopy() // the store's objects are shared
			if keep[objectKey(o)] || !appliedBy(o, FieldManager) || !o.GetDeletionTimestamp().IsZero() {
				continue
			}
			if err := c.Delete(ctx, o, client.PropagationPolicy("Background")); client.IgnoreNotFound(err) != nil {
				return pruned, fmt.Errorf("delete %s: %w", describe(o), err)
			}
			pruned = append(pruned, describe(o))
			tg.memo.drop(ps.Namespace + "/" + ps.Name + " " + objectKey(o))
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

// contentHash names what an object to apply holds.
func contentHash(o *unstructured.Unstructured) (string, error) {
	b, err := json.Marshal(o.Object)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
