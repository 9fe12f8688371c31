package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
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
	"github.com/marina-platform/marina/operators/controlplane/component/policysync"
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
	// forbidden are objects the sync operator's user may not write there,
	// with the API server's message.
	forbidden []string
	// kinds are the kinds of the objects in place there.
	kinds map[string]bool
	// settled and unlistable are, after a prune, the kinds that hold
	// nothing of the set's past there (see pruned).
	settled    map[string]bool
	unlistable []string
	// pruned are objects deleted because they left the set.
	pruned []string
	// kept are objects that left the set but stay: they are where
	// marina-sync never writes (prune's reserved).
	kept []string
	// transient says a refusal or failure may pass by itself (no answer,
	// a timeout, an overloaded or briefly failing API server, a
	// conflict), so the next try should not wait long.
	transient bool
}

func (o outcome) complete() bool {
	return len(o.notServed) == 0 && len(o.failed) == 0 && len(o.forbidden) == 0
}

// refuse records an object the control plane refused: a refusal of RBAC
// apart, since a person fixes it by granting, not by editing the set.
func (o *outcome) refuse(name string, err error) {
	o.transient = o.transient || transient(err)
	if notPermitted(err) {
		// RBAC's escalation refusal lists every rule the operator holds:
		// its first line says what matters.
		msg := err.Error()
		if i := strings.Index(msg, "not currently held"); i >= 0 {
			msg = msg[:i+len("not currently held")]
		}
		o.forbidden = append(o.forbidden, fmt.Sprintf("%s: %s", name, msg))
		return
	}
	o.failed = append(o.failed, fmt.Sprintf("%s: %v", name, err))
}

// transient says whether err may pass by itself, unlike a refusal a
// person has to act on (RBAC, a webhook, validation, a quota).
func transient(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return true // no answer: the network, a timeout on this side
	}
	return apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsUnexpectedServerError(err) ||
		apierrors.IsConflict(err)
}

// inPlace counts an object that is in place, of kind.
func (o *outcome) inPlace(kind string) {
	o.applied++
	if o.kinds == nil {
		o.kinds = map[string]bool{}
	}
	o.kinds[kind] = true
}

// notPermitted says whether err is RBAC's refusal: the authorizer's, or
// its escalation check's for a Role or binding that grants more than the
// operator holds. Other 403s (an admission webhook's denial, a namespace
// being terminated, a quota) keep their own message as refusals.
func notPermitted(err error) bool {
	if !apierrors.IsForbidden(err) {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, `User "`+policysync.User+`" cannot `) ||
		strings.Contains(msg, "attempting to grant RBAC permissions not currently held")
}

// reserved says why marina-sync must not apply o in a control plane, or
// "": the namespaces the engine and Kubernetes keep for themselves, with
// the members' credentials and Works, and what Marina's operators made
// there. Server-side apply would take such an object over, and pruning
// would later delete it.
func reserved(o *unstructured.Unstructured) string {
	if l, ok := policysync.MarinaManaged(o.GetLabels()); ok {
		return "it carries app.kubernetes.io/managed-by=" + l + ": Marina's operators keep it"
	}
	ns := o.GetNamespace()
	what := "it is in namespace " + ns
	if o.GetKind() == "Namespace" && o.GroupVersionKind().Group == "" {
		ns, what = o.GetName(), "it is namespace "+o.GetName()
	}
	if ns != "" && policysync.ReservedNamespace(ns) {
		return what + ", which the engine and Kubernetes keep for themselves (its components, the members' credentials and Works)"
	}
	return ""
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
				out.inPlace(kindOf(desired))
				continue
			}
		}
		o := desired.DeepCopy()
		name := describe(o)
		if why := reserved(o); why != "" {
			out.failed = append(out.failed, name+": not applied: "+why)
			continue
		}

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

		if why := reserved(live); exists && why != "" {
			out.failed = append(out.failed, name+": not applied: "+why)
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
				out.refuse(name, err)
				continue
			}
			if differs(live, dry) {
				out.drifted = append(out.drifted, name)
			} else {
				out.inPlace(kindOf(o))
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
		out.inPlace(kindOf(o))
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

// pruned is what a prune did in one control plane.
type pruned struct {
	// deleted are the objects it deleted.
	deleted []string
	// settled are the kinds of which nothing this PolicySet applied is
	// left there, or none can be seen: the sync operator may not list
	// them (unlistable).
	settled    map[string]bool
	unlistable []string
	// reserved are objects it would delete but may not, and why: they
	// are where marina-sync never writes (see reserved).
	reserved []string
}

// prune deletes, in one control plane, the objects this PolicySet applied
// that are not in keep (nil keeps nothing). Only objects that carry the
// PolicySet's labels and whose fields this operator applied are candidates:
// an object someone else made is never deleted, whatever its labels.
func (r *Reconciler) prune(ctx context.Context, tg target, ps *marinav1alpha1.PolicySet, kinds []string, keep map[string]bool) (pruned, error) {
	c := tg.c
	out := pruned{settled: map[string]bool{}}
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
				switch {
				case meta.IsNoMatchError(err) || apierrors.IsNotFound(err):
					out.settled[k] = true // the kind is gone, and its objects with it
					continue
				case notPermitted(err):
					// Nothing of it can have been applied with these
					// rights; what an administrator's kubeconfig applied
					// before cannot be seen.
					out.settled[k] = true
					out.unlistable = append(out.unlistable, k)
					continue
				}
				return out, fmt.Errorf("list %s: %w", gvk.Kind, err)
			}
			for i := range list.Items {
				items = append(items, &list.Items[i])
			}
		}
		left := false
		for _, o := range items {
			o := o.DeepCopy() // the store's objects are shared
			if keep[objectKey(o)] || !appliedBy(o, FieldManager) || !o.GetDeletionTimestamp().IsZero() {
				left = left || keep[objectKey(o)] || appliedBy(o, FieldManager)
				continue
			}
			// Applied before marina-sync refused such objects, or
			// labelled as Marina's since: the control plane's admission
			// policy refuses the delete too. It stays, and is reported.
			if why := reserved(o); why != "" {
				out.reserved = append(out.reserved, describe(o)+" ("+why+")")
				continue
			}
			if err := c.Delete(ctx, o, client.PropagationPolicy("Background")); client.IgnoreNotFound(err) != nil {
				return out, fmt.Errorf("delete %s: %w", describe(o), err)
			}
			out.deleted = append(out.deleted, describe(o))
			tg.memo.drop(ps.Namespace + "/" + ps.Name + " " + objectKey(o))
		}
		if !left {
			out.settled[k] = true
		}
	}
	return out, nil
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
