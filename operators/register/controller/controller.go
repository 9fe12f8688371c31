// Package controller is the register operator's MemberCluster reconciler:
// it reads a member's credentials from its source (a kubeconfig Secret or
// a Cluster API Cluster), probes the member, joins it to each control plane
// its spec lists and unjoins it from those it no longer lists, and cleans
// both sides when it is deleted (see ARCHITECTURE.md, "Registration").
package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
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
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/secrets"
	"github.com/marina-platform/marina/operators/register/capi"
	"github.com/marina-platform/marina/operators/register/dispatch"
	"github.com/marina-platform/marina/operators/register/join"
)

const (
	// FieldManager is the register operator's.
	FieldManager = join.FieldManager
	// Finalizer keeps a MemberCluster until it is unjoined everywhere.
	Finalizer = "marina.dev/register"
	// AnnotationUnjoinTimeout, a duration such as 30m, releases a deleted
	// MemberCluster's finalizer once it has been deleting that long, even
	// if the member could not be cleaned (a cluster that is gone for
	// good): the control planes are cleaned first in any case, and an
	// Event lists what stayed behind in the member.
	AnnotationUnjoinTimeout = "marina.dev/unjoin-timeout"
	// AnnotationRotateTokens, a time in RFC 3339 such as
	// 2026-12-02T19:00:00Z, replaces every token the control planes hold
	// for the member that was made before it: a rotation on demand, after
	// a leak say. The replaced tokens are revoked TokenRevokeAfter later.
	AnnotationRotateTokens = "marina.dev/rotate-tokens"
)

// Reconciler joins, probes and unjoins member clusters.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// DataCenter is the operator's: it joins members to the control planes
	// of its own data center only.
	DataCenter string
	// ProbeInterval is how often each member's API server is probed, with
	// ±10 % jitter so that many members spread out; 30 s when zero.
	ProbeInterval time.Duration
	// StatusInterval is how often a status that did not change is written
	// anyway, to refresh lastProbeTime; 30 minutes when zero. Together
	// with the probe this bounds the writes to the management cluster at
	// steady state.
	StatusInterval time.Duration
	// ResyncInterval is how often a join that is in place is checked
	// against both sides, taking back hand edits; 10 minutes when zero.
	ResyncInterval time.Duration
	// RetryAfter is the first wait after a problem a person must fix (a
	// bad kubeconfig, a conflict); it doubles up to 5 minutes.
	RetryAfter time.Duration
	// TokenRotation is the age at which the tokens a control plane holds
	// for a member are replaced; never when zero. A rotation is noticed at
	// the next check of the join (ResyncInterval).
	TokenRotation time.Duration
	// TokenRevokeAfter is how long a replaced token keeps working once
	// the control plane holds its successor, for clients that read it a
	// moment before.
	TokenRevokeAfter time.Duration
	// LeaseDuration is how long a member's dispatch lease stays valid
	// unrenewed: how long a lost data center's members wait before another
	// control plane dispatches to them. The holder renews it at every
	// probe; three probe intervals when zero.
	LeaseDuration time.Duration
	// Workers is how many MemberClusters are reconciled at once; 10 when
	// zero. A join waits on two API servers and a token controller, so
	// one worker would take a thousand arriving members minutes.
	Workers int

	clients *clients
	// joins holds, by joinKey, the last join that completed: what it was
	// made from and when.
	joins sync.Map
	// failures counts each MemberCluster's passes in a row that met a
	// problem, for the backoff.
	failures sync.Map
	// badAnnotations holds, by MemberCluster, the last invalid
	// AnnotationRotateTokens reported.
	badAnnotations sync.Map
	// leases claims members' dispatch leases; suspender keeps standby
	// control planes from dispatching (package dispatch).
	leases    dispatch.Leases
	suspender dispatch.Suspender
	// held is, by joinKey, when this control plane last renewed the
	// member's dispatch lease; demotions hold the timers that make it
	// hold back when it has not renewed in time; handedAt is when a lease
	// handed over to it was first seen.
	held, demotions, handedAt sync.Map
	// secrets reads members' and control planes' kubeconfig Secrets
	// without a cache of every Secret in the cluster.
	secrets *secrets.Reader
}

// SetupWithManager registers the reconciler.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.defaults()
	r.secrets = secrets.NewReader(mgr)
	if err := setupIndexes(context.Background(), mgr); err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&marinav1alpha1.MemberCluster{}).
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: r.Workers}).
		// Metadata only: which Secret changed is all a reconcile needs
		// to know, and the data of the few it reads comes from r.secrets.
		WatchesMetadata(&corev1.Secret{}, enqueueBySecret(mgr.GetClient())).
		Watches(&marinav1alpha1.ControlPlane{}, enqueueByControlPlane(mgr.GetClient())).
		// A ControlPlane that is gone: its policies' watch goes too.
		Watches(&marinav1alpha1.ControlPlane{}, handler.Funcs{DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[client.Object], _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			r.suspender.Forget(e.Object.GetUID(), "")
		}})
	if gvk := capi.Served(mgr.GetRESTMapper()); gvk != nil {
		b = b.Watches(capiWatchObject(*gvk), enqueueByClusterAPI(mgr.GetClient()))
	} else {
		mgr.GetLogger().Info("The management cluster serves no Cluster API Clusters: MemberClusters with spec.clusterRef are checked on each probe only")
	}
	return b.Complete(r)
}

func (r *Reconciler) defaults() {
	if r.ProbeInterval == 0 {
		r.ProbeInterval = 30 * time.Second
	}
	if r.StatusInterval == 0 {
		r.StatusInterval = 30 * time.Minute
	}
	if r.ResyncInterval == 0 {
		r.ResyncInterval = 10 * time.Minute
	}
	if r.RetryAfter == 0 {
		r.RetryAfter = 5 * time.Second
	}
	if r.Workers == 0 {
		r.Workers = 10
	}
	if r.LeaseDuration == 0 {
		r.LeaseDuration = 3 * r.ProbeInterval
	}
	if r.clients == nil {
		r.clients = newClients()
	}
}

// pass is one reconciliation of one MemberCluster.
type pass struct {
	mc     *marinav1alpha1.MemberCluster
	before *marinav1alpha1.MemberCluster
	member *clientEntry
	creds  *credentials
	// problem is set when something a person must fix was met, for the
	// backoff.
	problem bool
	// soon asks for the next pass shortly: a join waits for the member.
	soon bool
	// recheck, when set, asks for the next pass this soon: a fresh join
	// whose engine has not reported on the Cluster yet.
	recheck time.Duration
	// memberGone says the member cluster itself is being deleted (its
	// Cluster API Cluster is), so its side needs no cleaning.
	memberGone bool
	// feds are the control planes reached in this pass, by name.
	feds map[string]*federation
	// holding says a control plane of this data center holds the
	// member's dispatch lease: the next pass comes before its renew
	// deadline, whatever the backoff.
	holding bool
}

// Reconcile fetches a MemberCluster, runs the normal or the delete path,
// and writes its status once at the end.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	r.defaults()
	mc := &marinav1alpha1.MemberCluster{}
	if err := r.Client.Get(ctx, req.NamespacedName, mc); err != nil {
		if apierrors.IsNotFound(err) {
			forgetMember(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	p := &pass{mc: mc, before: mc.DeepCopy(), feds: map[string]*federation{}}
	defer func() {
		if p.before == nil {
			forgetMember(req.NamespacedName)
		} else {
			observe(mc)
		}
		if perr := r.patchStatus(ctx, p); perr != nil && err == nil {
			if apierrors.IsConflict(perr) {
				res = ctrl.Result{RequeueAfter: 200 * time.Millisecond}
				return
			}
			err = perr
		}
	}()
	if !mc.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, p)
	}
	if !controllerutil.ContainsFinalizer(mc, Finalizer) {
		before := mc.DeepCopy()
		controllerutil.AddFinalizer(mc, Finalizer)
		if err := r.Client.Patch(ctx, mc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, err
		}
		p.before.ResourceVersion = mc.ResourceVersion
	}
	if err := r.reconcileNormal(ctx, p); err != nil {
		return ctrl.Result{}, err
	}
	return r.next(req, p), nil
}

// next is when to look again: shortly while a join waits, with a growing
// backoff while a problem lasts, else at the next probe.
func (r *Reconciler) next(req ctrl.Request, p *pass) ctrl.Result {
	key := req.String()
	if !p.problem {
		r.failures.Delete(key)
		if p.soon {
			// A wait that lasts (no token controller in the member, an
			// engine finalizer that hangs) backs off up to the probe.
			n := 0
			if v, ok := r.failures.Load("soon/" + key); ok {
				n = v.(int)
			}
			r.failures.Store("soon/"+key, n+1)
			// The first look is a quarter second on: a token controller
			// fills a token Secret within that, mostly.
			return ctrl.Result{RequeueAfter: min(250*time.Millisecond<<min(n, 10), r.ProbeInterval)}
		}
		r.failures.Delete("soon/" + key)
		if p.recheck > 0 && p.recheck < r.ProbeInterval {
			return ctrl.Result{RequeueAfter: p.recheck}
		}
		if p.holding {
			// The lease is renewed at each pass.
			return ctrl.Result{RequeueAfter: min(jitter(r.ProbeInterval), r.LeaseDuration/3)}
		}
		return ctrl.Result{RequeueAfter: jitter(r.ProbeInterval)}
	}
	n := 0
	if v, ok := r.failures.Load(key); ok {
		n = v.(int)
	}
	r.failures.Store(key, n+1)
	wait := min(r.RetryAfter<<min(n, 6), 5*time.Minute)
	if p.holding {
		wait = min(wait, r.LeaseDuration/3)
	}
	return ctrl.Result{RequeueAfter: jitter(wait)}
}

// jitter spreads d by ±10 %.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

func (r *Reconciler) reconcileNormal(ctx context.Context, p *pass) error {
	mc := p.mc
	mc.Status.ObservedGeneration = mc.Generation

	creds, err := r.memberCredentials(ctx, mc)
	var problem *sourceProblem
	switch {
	case errors.As(err, &problem):
		p.problem = true
		r.setCondition(p, marinav1alpha1.ConditionReachable, metav1.ConditionFalse, problem.reason, problem.message)
		if problem.gone {
			// The cluster itself is going away: take it out of every
			// control plane (its own side goes with it).
			p.memberGone = true
			r.useLeftoverCredentials(ctx, mc, p)
			return r.unjoinAll(ctx, p, "its source went away: "+problem.message)
		}
	case err != nil:
		return err
	default:
		p.creds = creds
		if e, err := r.clients.get(memberClientID(mc), creds.key, creds.config); err != nil {
			p.problem = true
			r.setCondition(p, marinav1alpha1.ConditionReachable, metav1.ConditionFalse, marinav1alpha1.ReasonInvalidSecret, err.Error())
		} else {
			p.member = &e
			r.probe(ctx, p)
		}
	}

	if v := mc.Annotations[AnnotationRotateTokens]; v != "" {
		at, err := time.Parse(time.RFC3339, v)
		if err == nil && at.After(time.Now()) {
			err = errors.New("it is in the future; give the time the rotation is for, such as now")
		}
		if err != nil {
			// Said once per value, not on every probe.
			if last, _ := r.badAnnotations.Swap(mc.UID, v); last != v {
				r.Recorder.Eventf(mc, nil, corev1.EventTypeWarning, "InvalidAnnotation", "Rotate", "annotation %s=%q is not an RFC 3339 time in the past such as 2026-12-02T19:00:00Z: %v", AnnotationRotateTokens, v, err)
			}
		}
	}
	wanted := map[string]bool{}
	for _, ref := range mc.Spec.ControlPlanes {
		wanted[ref.Name] = true
		r.reconcileControlPlane(ctx, p, ref.Name)
	}
	for _, st := range slices.Clone(mc.Status.ControlPlanes) {
		if wanted[st.Name] {
			continue
		}
		if r.unjoinControlPlane(ctx, p, st.Name) == unjoinDone {
			r.Recorder.Eventf(mc, nil, corev1.EventTypeNormal, "Unjoined", "Unjoin", "unjoined from control plane %s, which spec.controlPlanes no longer lists", st.Name)
			removeControlPlaneStatus(mc, st.Name)
		}
	}
	r.dispatch(ctx, p)
	r.summarize(p)
	return nil
}

// useLeftoverCredentials reads the kubeconfig of a Cluster API Cluster
// that is being deleted, or is gone, while its Secret is still there, so
// that the member's side is cleaned too where the cluster itself lives on.
func (r *Reconciler) useLeftoverCredentials(ctx context.Context, mc *marinav1alpha1.MemberCluster, p *pass) {
	if mc.Spec.ClusterRef == nil {
		return
	}
	creds, err := r.kubeconfigFromSecret(ctx, mc.Namespace, mc.Spec.ClusterRef.Name+"-kubeconfig", capiKubeconfigKey, marinav1alpha1.ReasonWaitingForClusterAPI)
	if err != nil {
		return
	}
	if e, err := r.clients.get(memberClientID(mc), creds.key, creds.config); err == nil {
		p.creds, p.member = creds, &e
	}
}

// unjoinAll unjoins the member from every control plane it is joined to,
// for a source that went away.
func (r *Reconciler) unjoinAll(ctx context.Context, p *pass, why string) error {
	for _, st := range slices.Clone(p.mc.Status.ControlPlanes) {
		if r.unjoinControlPlane(ctx, p, st.Name) == unjoinDone {
			r.Recorder.Eventf(p.mc, nil, corev1.EventTypeNormal, "Unjoined", "Unjoin", "unjoined from control plane %s: %s", st.Name, why)
			removeControlPlaneStatus(p.mc, st.Name)
		}
	}
	r.summarize(p)
	return nil
}

// reconcileDelete unjoins the member from every control plane, then
// releases the finalizer.
func (r *Reconciler) reconcileDelete(ctx context.Context, p *pass) (ctrl.Result, error) {
	mc := p.mc
	if !controllerutil.ContainsFinalizer(mc, Finalizer) {
		return ctrl.Result{}, nil
	}
	creds, err := r.memberCredentials(ctx, mc)
	var problem *sourceProblem
	if errors.As(err, &problem) && problem.gone {
		p.memberGone = true
		r.useLeftoverCredentials(ctx, mc, p)
	}
	if err == nil {
		if e, err := r.clients.get(memberClientID(mc), creds.key, creds.config); err == nil {
			p.creds, p.member = creds, &e
		}
	}
	// The credentials are gone with the MemberCluster (a policy pruned it
	// and its Secret, a namespace being deleted): the client made from
	// them before still reaches the member.
	noCredentials := errors.As(err, &problem) && !problem.gone
	if p.member == nil && noCredentials {
		if e, ok := r.clients.lookup(memberClientID(mc)); ok {
			p.member = &e
		}
	}
	names := map[string]bool{}
	for _, st := range mc.Status.ControlPlanes {
		names[st.Name] = true
	}
	for _, ref := range mc.Spec.ControlPlanes {
		names[ref.Name] = true
	}
	var left, memberLeft []string
	for _, name := range slices.Sorted(maps.Keys(names)) {
		switch r.unjoinControlPlane(ctx, p, name) {
		case unjoinDone:
			removeControlPlaneStatus(mc, name)
		case unjoinMemberPending:
			memberLeft = append(memberLeft, name)
		default:
			left = append(left, name)
		}
	}
	r.setCondition(p, marinav1alpha1.ConditionReady, metav1.ConditionFalse, marinav1alpha1.ReasonDeleting,
		fmt.Sprintf("unjoining from %d control planes", len(left)+len(memberLeft)))
	// Every control plane let go of the member; only its own side is
	// left. Released when there is no way to reach it (its credentials
	// are gone) or after the unjoin-timeout: the tokens left there are
	// held by no control plane any more.
	if len(left) == 0 && len(memberLeft) > 0 {
		timeout, timedOut := r.unjoinTimedOut(mc)
		switch {
		case p.member == nil && noCredentials:
			r.Recorder.Eventf(mc, nil, corev1.EventTypeWarning, "UnjoinIncomplete", "Unjoin",
				"unjoined from every control plane, but the member's kubeconfig is gone (%s): its token Secrets for control planes %v stay in its namespace %s until removed by hand",
				problem.message, memberLeft, join.Namespace)
			memberLeft = nil
		case timedOut:
			r.Recorder.Eventf(mc, nil, corev1.EventTypeWarning, "UnjoinAbandoned", "Unjoin",
				"deleting for longer than %s (annotation %s): released without cleaning the member's side for control planes %v; the member keeps their token Secrets in namespace %s until removed by hand",
				timeout, AnnotationUnjoinTimeout, memberLeft, join.Namespace)
			memberLeft = nil
		}
	}
	if len(left)+len(memberLeft) > 0 {
		p.problem = true
		return r.next(ctrl.Request{NamespacedName: client.ObjectKeyFromObject(mc)}, p), nil
	}
	r.forget(mc)
	before := mc.DeepCopy()
	controllerutil.RemoveFinalizer(mc, Finalizer)
	p.before = nil // the object is going: no status to write
	return ctrl.Result{}, r.Client.Patch(ctx, mc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}

// unjoinTimedOut says whether the MemberCluster's unjoin-timeout has
// passed since its deletion began.
func (r *Reconciler) unjoinTimedOut(mc *marinav1alpha1.MemberCluster) (time.Duration, bool) {
	v := mc.Annotations[AnnotationUnjoinTimeout]
	if v == "" {
		return 0, false
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.Recorder.Eventf(mc, nil, corev1.EventTypeWarning, "InvalidAnnotation", "Unjoin", "annotation %s=%q is not a duration such as 30m: %v", AnnotationUnjoinTimeout, v, err)
		return 0, false
	}
	return d, time.Since(mc.DeletionTimestamp.Time) >= d
}

func (r *Reconciler) forget(mc *marinav1alpha1.MemberCluster) {
	r.clients.forget(memberClientID(mc))
	r.failures.Delete(client.ObjectKeyFromObject(mc).String())
	r.failures.Delete("soon/" + client.ObjectKeyFromObject(mc).String())
	r.badAnnotations.Delete(mc.UID)
	r.leases.Forget(string(mc.UID))
	r.joins.Range(func(k, _ any) bool {
		if k.(joinKey).member == mc.UID {
			r.joins.Delete(k)
		}
		return true
	})
}

func memberClientID(mc *marinav1alpha1.MemberCluster) string { return "member/" + string(mc.UID) }

// patchStatus writes the status when it changed, or when the last write
// is older than StatusInterval (lastProbeTime is then refreshed).
func (r *Reconciler) patchStatus(ctx context.Context, p *pass) error {
	if p.before == nil {
		return nil
	}
	now, last := p.mc.Status.LastProbeTime, p.before.Status.LastProbeTime
	p.mc.Status.LastProbeTime = last
	unchanged := equality.Semantic.DeepEqual(p.before.Status, p.mc.Status)
	// Unchanged: written only to record a first probe time, or to refresh
	// it every StatusInterval.
	if unchanged && (now == nil || (last != nil && time.Since(last.Time) < r.StatusInterval)) {
		return nil
	}
	if now != nil {
		p.mc.Status.LastProbeTime = now
	}
	return r.Client.Status().Patch(ctx, p.mc, client.MergeFromWithOptions(p.before, client.MergeFromWithOptimisticLock{}))
}

// setCondition sets a condition of the member as a whole; a condition
// that turns False with a new reason is also a Warning Event.
func (r *Reconciler) setCondition(p *pass, typ string, status metav1.ConditionStatus, reason, msg string) {
	setCondition(&p.mc.Status.Conditions, p.mc.Generation, typ, status, reason, msg)
	r.eventOnChange(p, meta.FindStatusCondition(p.before.Status.Conditions, typ), typ, status, reason, msg)
}

func (r *Reconciler) eventOnChange(p *pass, old *metav1.Condition, typ string, status metav1.ConditionStatus, reason, msg string) {
	if old != nil && old.Status == status && old.Reason == reason {
		return
	}
	switch {
	case status != metav1.ConditionFalse || reason == marinav1alpha1.ReasonProgressing || reason == marinav1alpha1.ReasonDeleting:
	case waiting[reason]:
		r.Recorder.Eventf(p.mc, nil, corev1.EventTypeNormal, reason, typ, "%s", msg)
	default:
		r.Recorder.Eventf(p.mc, nil, corev1.EventTypeWarning, reason, typ, "%s", msg)
	}
}

// waiting are the reasons of states that pass by themselves (a control
// plane still provisioning, a Cluster API Cluster not initialized or
// paused on purpose): a Normal Event, not a Warning.
var waiting = map[string]bool{
	marinav1alpha1.ReasonStandby:              true,
	marinav1alpha1.ReasonControlPlaneNotReady: true,
	marinav1alpha1.ReasonWaitingForClusterAPI: true,
	marinav1alpha1.ReasonPaused:               true,
}

func setCondition(conds *[]metav1.Condition, gen int64, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(conds, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: truncate(msg), ObservedGeneration: gen})
}

// truncate keeps a message within the API's 32 KiB limit on conditions.
func truncate(s string) string {
	const max = 4096
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// summarize sets JoinedControlPlanes and Ready: the member is reachable
// and joined to, and ready in, every control plane its spec lists.
func (r *Reconciler) summarize(p *pass) {
	mc := p.mc
	joined := int32(0)
	var notReady []string
	for _, st := range mc.Status.ControlPlanes {
		if meta.IsStatusConditionTrue(st.Conditions, marinav1alpha1.ConditionJoined) {
			joined++
		}
	}
	for _, ref := range mc.Spec.ControlPlanes {
		st := controlPlaneStatus(mc, ref.Name)
		if st == nil || !meta.IsStatusConditionTrue(st.Conditions, marinav1alpha1.ConditionReady) {
			notReady = append(notReady, ref.Name)
		}
	}
	mc.Status.JoinedControlPlanes = joined
	reach := meta.FindStatusCondition(mc.Status.Conditions, marinav1alpha1.ConditionReachable)
	switch {
	case reach == nil || reach.Status != metav1.ConditionTrue:
		reason, msg := marinav1alpha1.ReasonClusterUnreachable, "the member's API server was not reached"
		if reach != nil {
			reason, msg = reach.Reason, reach.Message
		}
		setCondition(&mc.Status.Conditions, mc.Generation, marinav1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	case len(mc.Spec.ControlPlanes) == 0:
		setCondition(&mc.Status.Conditions, mc.Generation, marinav1alpha1.ConditionReady, metav1.ConditionFalse, marinav1alpha1.ReasonAwaitingApproval,
			"spec.controlPlanes lists no control plane to join")
	case len(notReady) > 0:
		reason, msg := marinav1alpha1.ReasonProgressing, ""
		for _, name := range notReady {
			st := controlPlaneStatus(mc, name)
			var c *metav1.Condition
			if st != nil {
				if c = meta.FindStatusCondition(st.Conditions, marinav1alpha1.ConditionJoined); c != nil && c.Status == metav1.ConditionTrue {
					c = meta.FindStatusCondition(st.Conditions, marinav1alpha1.ConditionReady)
				}
			}
			if c != nil {
				reason = c.Reason
				msg = fmt.Sprintf("control plane %s: %s", name, c.Message)
				break
			}
		}
		if msg == "" {
			msg = fmt.Sprintf("not yet joined and ready in %v", notReady)
		}
		setCondition(&mc.Status.Conditions, mc.Generation, marinav1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	default:
		setCondition(&mc.Status.Conditions, mc.Generation, marinav1alpha1.ConditionReady, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded,
			fmt.Sprintf("joined and ready in %d control planes", len(mc.Spec.ControlPlanes)))
	}
}

func controlPlaneStatus(mc *marinav1alpha1.MemberCluster, name string) *marinav1alpha1.MemberControlPlaneStatus {
	for i := range mc.Status.ControlPlanes {
		if mc.Status.ControlPlanes[i].Name == name {
			return &mc.Status.ControlPlanes[i]
		}
	}
	return nil
}

func ensureControlPlaneStatus(mc *marinav1alpha1.MemberCluster, name string) *marinav1alpha1.MemberControlPlaneStatus {
	if st := controlPlaneStatus(mc, name); st != nil {
		return st
	}
	mc.Status.ControlPlanes = append(mc.Status.ControlPlanes, marinav1alpha1.MemberControlPlaneStatus{Name: name})
	slices.SortFunc(mc.Status.ControlPlanes, func(a, b marinav1alpha1.MemberControlPlaneStatus) int {
		return strings.Compare(a.Name, b.Name)
	})
	return controlPlaneStatus(mc, name)
}

func removeControlPlaneStatus(mc *marinav1alpha1.MemberCluster, name string) {
	mc.Status.ControlPlanes = slices.DeleteFunc(mc.Status.ControlPlanes, func(s marinav1alpha1.MemberControlPlaneStatus) bool {
		return s.Name == name
	})
}
