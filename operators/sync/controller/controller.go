// Package controller is the sync operator's PolicySet reconciler: it reads
// a PolicySet's sources (inline objects, a ConfigMap, a bundle of package
// policies, an HTTP document with its sha256) into one ordered set, and
// applies that set with server-side apply to every ControlPlane of the
// PolicySet's namespace that its selector picks, as the control plane's
// user marina:sync-operator, never as its administrator: the rights it has
// there are package policysync's, and an object it may not write is
// reported with how to grant it. Objects that left the set are pruned, and only
// those this operator applied; a change someone made in a control plane is
// put back (driftMode Correct) or only reported (Report).
//
// Status says, per control plane, which revision (the set's checksum) it
// holds in full: equal checksums in two data centers mean identical
// policies.
package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/secrets"
	"github.com/marina-platform/marina/internal/urlpolicy"
	"github.com/marina-platform/marina/operators/controlplane/component/policysync"
	"github.com/marina-platform/marina/operators/controlplane/crdbundle"
)

const (
	// FieldManager owns every field the operator applies in a control
	// plane; pruning deletes only objects it applied.
	FieldManager = "marina-sync"
	// Finalizer holds a PolicySet until what it applied is pruned.
	Finalizer = "marina.dev/policyset"
	// configMapIndex indexes PolicySets by the ConfigMaps they read.
	configMapIndex = "spec.sources.configMapRef.name"
	// parallelTargets is how many control planes one PolicySet is applied
	// to at once.
	parallelTargets = 8
)

// Reconciler reconciles PolicySets.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// Fetcher downloads HTTP sources (proxy, retries, size bound, cache).
	Fetcher *crdbundle.Fetcher
	// URLPolicy limits the hosts HTTP sources may name.
	URLPolicy urlpolicy.Policy
	// RetryAfter is how soon a PolicySet is tried again when a source, a
	// control plane or an object is not ready.
	RetryAfter time.Duration
	// MaxRetryAfter bounds the backoff of a PolicySet whose objects a
	// control plane refuses: each such pass rewrites them all, and only a
	// person (or a grant, a CRD) changes the answer. Five minutes when
	// zero. A change to the PolicySet or its control planes is still
	// acted on at once.
	MaxRetryAfter time.Duration

	targets *targets
	// refusals counts, by PolicySet, the passes in a row in which a
	// control plane refused objects.
	refusals sync.Map
	parsed   parsedCache
	// secrets reads the control planes' sync kubeconfigs without a cache
	// of every Secret in the cluster.
	secrets *secrets.Reader
	// events carries the control planes' watch events (see watch).
	events chan event.GenericEvent
}

// Its permissions are the markers in operators/sync/rbac.go.

// SetupWithManager registers the reconciler. A PolicySet is reconciled
// when its spec changes, when a ControlPlane of its namespace changes in
// what matters here (labels, readiness, the sync kubeconfig), and when a
// ConfigMap it reads changes.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.targets = newTargets()
	r.secrets = secrets.NewReader(mgr)
	r.events = make(chan event.GenericEvent, 1024)
	if r.Fetcher == nil {
		r.Fetcher = crdbundle.NewFetcher()
	}
	if r.RetryAfter == 0 {
		r.RetryAfter = 30 * time.Second
	}
	if r.MaxRetryAfter == 0 {
		r.MaxRetryAfter = 5 * time.Minute
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &marinav1alpha1.PolicySet{}, configMapIndex, func(o client.Object) []string {
		var names []string
		for _, s := range o.(*marinav1alpha1.PolicySet).Spec.Sources {
			if s.ConfigMapRef != nil {
				names = append(names, s.ConfigMapRef.Name)
			}
		}
		return names
	}); err != nil {
		return err
	}
	inNamespace := func(ctx context.Context, ns string, opts ...client.ListOption) []reconcile.Request {
		list := &marinav1alpha1.PolicySetList{}
		if err := r.Client.List(ctx, list, append(opts, client.InNamespace(ns))...); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, ps := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&ps)})
		}
		return reqs
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("policyset").
		For(&marinav1alpha1.PolicySet{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&marinav1alpha1.ControlPlane{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			// A control plane being deleted takes no more objects: its
			// client and watches go now, not at the next restart.
			if !o.GetDeletionTimestamp().IsZero() {
				r.forget(o.GetNamespace(), o.GetName())
			}
			return inNamespace(ctx, o.GetNamespace())
		}), builder.WithPredicates(controlPlaneChanged())).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return inNamespace(ctx, o.GetNamespace(), client.MatchingFields{configMapIndex: o.GetName()})
		})).
		WatchesRawSource(source.Channel(r.events, &handler.EnqueueRequestForObject{})).
		Complete(r)
}

// controlPlaneChanged passes a ControlPlane's creation, deletion and the
// updates that change which PolicySets select it or whether it can take
// objects; its many other status updates are none of this operator's
// business.
func controlPlaneChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		a, b := e.ObjectOld.(*marinav1alpha1.ControlPlane), e.ObjectNew.(*marinav1alpha1.ControlPlane)
		return !equalLabels(a.Labels, b.Labels) || notReady(a) != notReady(b) ||
			!equalRefs(a.Status.SyncKubeconfigSecretRef, b.Status.SyncKubeconfigSecretRef)
	}}
}

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func equalRefs(a, b *marinav1alpha1.SecretKeyReference) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// Reconcile applies one PolicySet to its control planes.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ps := &marinav1alpha1.PolicySet{}
	if err := r.Client.Get(ctx, req.NamespacedName, ps); err != nil {
		if apierrors.IsNotFound(err) {
			r.refusals.Delete(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := ps.DeepCopy()
	if !ps.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, ps, before)
	}
	if !controllerutil.ContainsFinalizer(ps, Finalizer) {
		patch := client.MergeFromWithOptions(ps.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(ps, Finalizer)
		if err := r.Client.Patch(ctx, ps, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("add finalizer: %w", err)
		}
		before = ps.DeepCopy()
	}
	res, err := r.reconcileNormal(ctx, ps)
	ps.Status.ObservedGeneration = ps.Generation
	if !equality.Semantic.DeepEqual(before.Status, ps.Status) {
		if perr := r.Client.Status().Patch(ctx, ps, client.MergeFrom(before)); perr != nil && !apierrors.IsNotFound(perr) {
			err = errors.Join(err, fmt.Errorf("patch status: %w", perr))
		}
	}
	return res, err
}

func (r *Reconciler) reconcileNormal(ctx context.Context, ps *marinav1alpha1.PolicySet) (ctrl.Result, error) {
	gen := ps.Generation
	set, err := r.resolve(ctx, ps)
	if err != nil {
		var se *sourceError
		if !errors.As(err, &se) {
			return ctrl.Result{}, err
		}
		msg := err.Error() + "; nothing was applied or pruned, and the control planes keep what they had"
		r.set(ps, marinav1alpha1.ConditionSourcesReady, metav1.ConditionFalse, marinav1alpha1.ReasonSourceUnavailable, msg)
		r.set(ps, marinav1alpha1.ConditionReady, metav1.ConditionFalse, marinav1alpha1.ReasonSourceUnavailable, msg)
		r.warn(ps, marinav1alpha1.ReasonSourceUnavailable, msg)
		return ctrl.Result{RequeueAfter: r.RetryAfter}, nil
	}
	r.set(ps, marinav1alpha1.ConditionSourcesReady, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded, fmt.Sprintf("%d objects, checksum %s", len(set.objects), set.checksum))
	ps.Status.Objects = int32(len(set.objects))
	ps.Status.Checksum = set.checksum

	sel, err := metav1.LabelSelectorAsSelector(&ps.Spec.ControlPlaneSelector)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("spec.controlPlaneSelector: %w", err)
	}
	cps := &marinav1alpha1.ControlPlaneList{}
	if err := r.Client.List(ctx, cps, client.InNamespace(ps.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return ctrl.Result{}, err
	}

	// AppliedKinds are the kinds that may hold something the set applied:
	// a kind joins once one of its objects is in place somewhere (not
	// while every one is refused), and leaves once it left the set and
	// every control plane holds nothing of it.
	keep, inSet := map[string]bool{}, map[string]bool{}
	for _, o := range set.objects {
		keep[objectKey(o)] = true
		inSet[kindOf(o)] = true
	}
	before := slices.Clone(ps.Status.AppliedKinds)
	prune := ps.Spec.Prune == nil || *ps.Spec.Prune

	var selected []string
	var waiting, failing []string
	// refused says a control plane refused objects for a reason a person
	// has to act on; passing says some problem may pass by itself (a
	// control plane that does not answer, a timeout), which is tried
	// again soon whatever else was refused.
	refused, passing := false, false
	drifted := 0
	type job struct {
		cp   *marinav1alpha1.ControlPlane
		tg   target
		same bool
	}
	var work []job
	for i := range cps.Items {
		cp := &cps.Items[i]
		selected = append(selected, cp.Name)
		t := targetStatus(ps, cp.Name)
		if why := notReady(cp); why != "" {
			msg := fmt.Sprintf("ControlPlane %s cannot take objects: %s; retried", cp.Name, why)
			setTargetCondition(t, marinav1alpha1.ConditionApplied, metav1.ConditionFalse, marinav1alpha1.ReasonControlPlaneNotReady, msg, gen)
			targetProblems.WithLabelValues(marinav1alpha1.ReasonControlPlaneNotReady).Inc()
			waiting = append(waiting, cp.Name)
			continue
		}
		c, err := r.targetClient(ctx, cp)
		if err != nil {
			msg := fmt.Sprintf("ControlPlane %s: %v; retried", cp.Name, err)
			setTargetCondition(t, marinav1alpha1.ConditionApplied, metav1.ConditionFalse, marinav1alpha1.ReasonClusterUnreachable, msg, gen)
			targetProblems.WithLabelValues(marinav1alpha1.ReasonClusterUnreachable).Inc()
			failing = append(failing, cp.Name)
			passing = true
			continue
		}
		work = append(work, job{cp: cp, tg: c, same: t.Revision == set.checksum})
	}

	// The control planes are independent: they are worked on side by side,
	// a few at a time, and their outcomes recorded in order afterwards.
	outs := make([]outcome, len(work))
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallelTargets)
	for i, j := range work {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			start := time.Now()
			if err := j.tg.watch.ensure(ctx, before); err != nil {
				log.FromContext(ctx).Error(err, "Cannot watch the applied objects; drift is seen on the next pass", "controlPlane", j.cp.Name)
			}
			out := r.apply(ctx, j.tg, ps, set, j.same)
			// Kinds in place for the first time are watched from now on;
			// one marina-sync may not write is not.
			here := slices.Sorted(maps.Keys(out.kinds))
			if err := j.tg.watch.ensure(ctx, here); err != nil {
				log.FromContext(ctx).Error(err, "Cannot watch the applied objects; drift is seen on the next pass", "controlPlane", j.cp.Name)
			}
			// Prune only once everything is in place, so that a
			// half-applied set never costs a control plane what it had.
			// It reads the watch's store, so an unchanged set costs no
			// request.
			if prune && out.complete() {
				pr, err := r.prune(ctx, j.tg, ps, union(before, here), keep)
				out.pruned, out.settled, out.unlistable, out.kept = pr.deleted, pr.settled, pr.unlistable, pr.reserved
				if err != nil {
					out.failed = append(out.failed, "prune: "+err.Error())
					out.transient = true
				}
			}
			applySeconds.Observe(time.Since(start).Seconds())
			outs[i] = out
		}()
	}
	wg.Wait()
	for i, j := range work {
		out := outs[i]
		observe(ps, out)
		// Looked up again: adding targets may have moved the slice.
		r.record(ctx, ps, j.cp, targetStatus(ps, j.cp.Name), set, out)
		drifted += len(out.drifted)
		if len(out.kept) > 0 {
			r.warn(ps, marinav1alpha1.ReasonApplyFailed, fmt.Sprintf("control plane %s: left in place, though they left the set: %s", j.cp.Name, strings.Join(first(out.kept, 5), "; ")))
		}
		if !out.complete() {
			failing = append(failing, j.cp.Name)
			if out.transient {
				passing = true
			} else {
				refused = true
			}
		}
	}
	// Targets no longer selected leave the status; what was applied there
	// stays (a ControlPlane relabelled out of the set keeps its policies).
	ps.Status.Targets = slices.DeleteFunc(ps.Status.Targets, func(t marinav1alpha1.PolicySetTargetStatus) bool {
		return !slices.Contains(selected, t.Name)
	})
	kinds := before
	for _, out := range outs {
		kinds = union(kinds, slices.Sorted(maps.Keys(out.kinds)))
	}
	if prune && len(failing) == 0 && len(waiting) == 0 {
		kinds = slices.DeleteFunc(kinds, func(k string) bool {
			if inSet[k] {
				return false
			}
			var unseen []string
			for i, out := range outs {
				if !out.settled[k] {
					return false
				}
				if slices.Contains(out.unlistable, k) {
					unseen = append(unseen, work[i].cp.Name)
				}
			}
			if len(unseen) > 0 {
				r.warn(ps, marinav1alpha1.ReasonNotPermitted, fmt.Sprintf("kind %s left the set, but %s may not list it in control planes %s: objects of it applied before with other rights stay there", k, policysync.User, strings.Join(unseen, ", ")))
			}
			return true
		})
	}
	ps.Status.AppliedKinds = kinds

	switch {
	case len(failing) > 0 || len(waiting) > 0:
		msg := fmt.Sprintf("revision %s is in %d of %d control planes", short(set.checksum), len(selected)-len(failing)-len(waiting), len(selected))
		if len(failing) > 0 {
			msg += "; failing: " + strings.Join(failing, ", ")
		}
		if len(waiting) > 0 {
			msg += "; not ready: " + strings.Join(waiting, ", ")
		}
		msg += " (status.targets says why)"
		reason := marinav1alpha1.ReasonApplyFailed
		if len(failing) == 0 {
			reason = marinav1alpha1.ReasonControlPlaneNotReady
		}
		r.set(ps, marinav1alpha1.ConditionApplied, metav1.ConditionFalse, reason, msg)
		r.set(ps, marinav1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	default:
		msg := fmt.Sprintf("revision %s is in all %d control planes", short(set.checksum), len(selected))
		r.set(ps, marinav1alpha1.ConditionApplied, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded, msg)
		r.set(ps, marinav1alpha1.ConditionReady, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded, msg)
	}
	switch {
	case drifted > 0 && ps.Spec.DriftMode == marinav1alpha1.DriftModeReport:
		r.set(ps, marinav1alpha1.ConditionDrifted, metav1.ConditionTrue, marinav1alpha1.ReasonDriftDetected,
			fmt.Sprintf("%d objects were changed in control planes and left so (driftMode Report; status.targets names them)", drifted))
	case drifted > 0:
		r.set(ps, marinav1alpha1.ConditionDrifted, metav1.ConditionFalse, marinav1alpha1.ReasonDriftCorrected,
			fmt.Sprintf("%d objects changed in control planes were put back", drifted))
	default:
		r.set(ps, marinav1alpha1.ConditionDrifted, metav1.ConditionFalse, marinav1alpha1.ReasonSucceeded, "every object is as applied")
	}
	return r.retry(client.ObjectKeyFromObject(ps), ps.Generation, refused && !passing, len(failing) > 0 || len(waiting) > 0), nil
}

// refusalCount is how many passes in a row over one generation of a
// PolicySet met only refusals.
type refusalCount struct {
	generation int64
	n          int
}

// retry is when to pass again: never while everything is in place; after
// RetryAfter while a control plane is not ready, cannot be reached or
// fails in a way that may pass (each try costs a request or none); and
// with a backoff doubling up to MaxRetryAfter while every problem is a
// refusal a person has to act on, since each try writes the refused
// objects again. A new generation of the PolicySet starts the count
// again.
func (r *Reconciler) retry(key client.ObjectKey, generation int64, refused, incomplete bool) ctrl.Result {
	if !refused {
		r.refusals.Delete(key)
		if incomplete {
			return ctrl.Result{RequeueAfter: r.RetryAfter}
		}
		return ctrl.Result{}
	}
	n := 0
	if v, ok := r.refusals.Load(key); ok && v.(refusalCount).generation == generation {
		n = v.(refusalCount).n
	}
	r.refusals.Store(key, refusalCount{generation: generation, n: n + 1})
	return ctrl.Result{RequeueAfter: min(r.RetryAfter<<min(n, 10), max(r.MaxRetryAfter, r.RetryAfter))}
}

// record writes one control plane's outcome into its status entry, with an
// Event for what a person should know.
func (r *Reconciler) record(ctx context.Context, ps *marinav1alpha1.PolicySet, cp *marinav1alpha1.ControlPlane, t *marinav1alpha1.PolicySetTargetStatus, set *objectSet, out outcome) {
	gen := ps.Generation
	t.Applied = int32(out.applied)
	t.Drifted = int32(len(out.drifted))
	t.DriftedObjects = first(out.drifted, 16)
	if len(out.pruned) > 0 {
		log.FromContext(ctx).Info("Pruned objects that left the set", "controlPlane", cp.Name, "objects", out.pruned)
		r.Recorder.Eventf(ps, nil, corev1.EventTypeNormal, "Pruned", "Prune", "control plane %s: deleted %s", cp.Name, strings.Join(first(out.pruned, 10), ", "))
	}
	switch {
	case !out.complete():
		// The reason is the first kind of problem found, in the order a
		// person would fix them; the message lists them all.
		var reason string
		var parts []string
		add := func(r, part string) {
			if reason == "" {
				reason = r
			}
			parts = append(parts, part)
		}
		if len(out.failed) > 0 {
			add(marinav1alpha1.ReasonApplyFailed, fmt.Sprintf("%d objects refused: %s", len(out.failed), strings.Join(first(out.failed, 5), "; ")))
		}
		if len(out.forbidden) > 0 {
			add(marinav1alpha1.ReasonNotPermitted, fmt.Sprintf("%d objects not permitted (%s): %s", len(out.forbidden), policysync.Hint, strings.Join(first(out.forbidden, 5), "; ")))
		}
		if len(out.notServed) > 0 {
			add(marinav1alpha1.ReasonKindNotServed, fmt.Sprintf("%d objects of kinds the control plane does not serve (yet): %s", len(out.notServed), strings.Join(first(out.notServed, 5), ", ")))
		}
		msg := strings.Join(parts, "; ") + fmt.Sprintf("; the other %d are applied; retried", out.applied)
		setTargetCondition(t, marinav1alpha1.ConditionApplied, metav1.ConditionFalse, reason, msg, gen)
		r.warn(ps, reason, "control plane "+cp.Name+": "+msg)
	default:
		// Only a new revision or a correction is news: a pass that changed
		// nothing writes no status.
		if t.Revision != set.checksum || (len(out.drifted) > 0 && ps.Spec.DriftMode != marinav1alpha1.DriftModeReport) {
			now := metav1.Now()
			t.LastAppliedTime = &now
		}
		if t.Revision != set.checksum {
			r.Recorder.Eventf(ps, nil, corev1.EventTypeNormal, "Applied", "Apply", "control plane %s: revision %s, %d objects", cp.Name, short(set.checksum), out.applied)
		}
		t.Revision = set.checksum
		setTargetCondition(t, marinav1alpha1.ConditionApplied, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded,
			fmt.Sprintf("revision %s: %d objects", short(set.checksum), out.applied), gen)
	}
	switch {
	case len(out.drifted) > 0 && ps.Spec.DriftMode == marinav1alpha1.DriftModeReport:
		msg := fmt.Sprintf("%d objects changed by someone else, left so (driftMode Report): %s", len(out.drifted), strings.Join(first(out.drifted, 5), ", "))
		setTargetCondition(t, marinav1alpha1.ConditionDrifted, metav1.ConditionTrue, marinav1alpha1.ReasonDriftDetected, msg, gen)
		r.warn(ps, marinav1alpha1.ReasonDriftDetected, "control plane "+cp.Name+": "+msg)
	case len(out.drifted) > 0:
		msg := fmt.Sprintf("%d objects changed by someone else were put back: %s", len(out.drifted), strings.Join(first(out.drifted, 5), ", "))
		setTargetCondition(t, marinav1alpha1.ConditionDrifted, metav1.ConditionFalse, marinav1alpha1.ReasonDriftCorrected, msg, gen)
		r.Recorder.Eventf(ps, nil, corev1.EventTypeNormal, marinav1alpha1.ReasonDriftCorrected, "Correct", "control plane %s: %s", cp.Name, msg)
	default:
		setTargetCondition(t, marinav1alpha1.ConditionDrifted, metav1.ConditionFalse, marinav1alpha1.ReasonSucceeded, "every object is as applied", gen)
	}
}

// reconcileDelete prunes everything the PolicySet applied (unless prune is
// off) from every control plane it reached, then lets it go. A control
// plane that is gone has nothing left to prune; one that cannot be reached
// holds the PolicySet, retried and reported.
func (r *Reconciler) reconcileDelete(ctx context.Context, ps *marinav1alpha1.PolicySet, before *marinav1alpha1.PolicySet) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(ps, Finalizer) {
		return ctrl.Result{}, nil
	}
	if ps.Spec.Prune == nil || *ps.Spec.Prune {
		var blocked []string
		for _, t := range ps.Status.Targets {
			cp := &marinav1alpha1.ControlPlane{}
			err := r.Client.Get(ctx, client.ObjectKey{Namespace: ps.Namespace, Name: t.Name}, cp)
			if apierrors.IsNotFound(err) {
				r.forget(ps.Namespace, t.Name)
				continue
			}
			if err == nil && notReady(cp) != "" && !cp.DeletionTimestamp.IsZero() {
				continue // going, with everything in it
			}
			var tg target
			if err == nil {
				if why := notReady(cp); why != "" {
					err = errors.New(why)
				} else {
					tg, err = r.targetClient(ctx, cp)
				}
			}
			if err == nil {
				var pr pruned
				pr, err = r.prune(ctx, tg, ps, ps.Status.AppliedKinds, nil)
				if len(pr.unlistable) > 0 && err == nil {
					r.warn(ps, marinav1alpha1.ReasonNotPermitted, fmt.Sprintf("deleting: %s may not list %s in control plane %s: objects of those kinds applied before with other rights stay there", policysync.User, strings.Join(pr.unlistable, ", "), t.Name))
				}
				if len(pr.reserved) > 0 && err == nil {
					r.warn(ps, marinav1alpha1.ReasonApplyFailed, fmt.Sprintf("deleting: left in place in control plane %s: %s", t.Name, strings.Join(first(pr.reserved, 5), "; ")))
				}
			}
			if err != nil {
				blocked = append(blocked, fmt.Sprintf("%s: %v", t.Name, err))
			}
		}
		if len(blocked) > 0 {
			msg := "deleting: the objects it applied could not be removed from " + strings.Join(blocked, "; ") + "; retried"
			r.set(ps, marinav1alpha1.ConditionReady, metav1.ConditionFalse, marinav1alpha1.ReasonDeleting, msg)
			r.warn(ps, marinav1alpha1.ReasonDeleting, msg)
			if err := r.Client.Status().Patch(ctx, ps, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) {
				return ctrl.Result{}, err
			}
			return ctrl.Result{RequeueAfter: r.RetryAfter}, nil
		}
	}
	r.targets.forgetPolicySet(ps.Namespace + "/" + ps.Name + " ")
	r.refusals.Delete(client.ObjectKeyFromObject(ps))
	patch := client.MergeFromWithOptions(ps.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(ps, Finalizer)
	return ctrl.Result{}, client.IgnoreNotFound(r.Client.Patch(ctx, ps, patch))
}

// union is a and b, sorted, each once.
func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

func (r *Reconciler) set(ps *marinav1alpha1.PolicySet, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&ps.Status.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: ps.Generation})
}

// warn is a Warning Event; the events API folds repeats of one into a
// series, so a PolicySet retried with the same problem does not flood.
func (r *Reconciler) warn(ps *marinav1alpha1.PolicySet, reason, msg string) {
	// The events API refuses a note over 1 kB: cut, never lost.
	if len(msg) > 1000 {
		msg = msg[:997] + "..."
	}
	r.Recorder.Eventf(ps, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", msg)
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func short(checksum string) string {
	if len(checksum) > 12 {
		return checksum[:12]
	}
	return checksum
}
