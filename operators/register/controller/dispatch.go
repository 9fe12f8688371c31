package controller

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/operators/register/dispatch"
	"github.com/marina-platform/marina/operators/register/join"
)

// dispatch settles which control plane dispatches to the member (see
// package dispatch): each control plane of this data center the member is
// joined to claims the member's lease, and the ones that do not hold it
// keep their propagation policies from dispatching to the member. The
// first of them is preferred where the member was made in this data
// center.
func (r *Reconciler) dispatch(ctx context.Context, p *pass) {
	mc := p.mc
	var joined []string
	for _, ref := range mc.Spec.ControlPlanes {
		if st := controlPlaneStatus(mc, ref.Name); st != nil && p.feds[ref.Name] != nil &&
			meta.IsStatusConditionTrue(st.Conditions, marinav1alpha1.ConditionJoined) {
			joined = append(joined, ref.Name)
		}
	}
	// An entry this pass cannot settle: its control plane does not
	// answer, or its join is not in place (any more). While this control
	// plane may still hold the lease (until its renew deadline, when it
	// holds back by itself) whether it dispatches is not known; after
	// that it does not, and the entry says nothing of dispatching.
	for i := range mc.Status.ControlPlanes {
		st := &mc.Status.ControlPlanes[i]
		joinedThere := meta.IsStatusConditionTrue(st.Conditions, marinav1alpha1.ConditionJoined)
		if joinedThere && p.feds[st.Name] != nil {
			continue
		}
		_, held := r.held.Load(joinKey{member: mc.UID, controlPlane: st.Name})
		c := meta.FindStatusCondition(st.Conditions, marinav1alpha1.ConditionDispatching)
		j := meta.FindStatusCondition(st.Conditions, marinav1alpha1.ConditionJoined)
		switch {
		case c == nil:
		case !joinedThere && (!held || j == nil):
			meta.RemoveStatusCondition(&st.Conditions, marinav1alpha1.ConditionDispatching)
		case !joinedThere:
			setCondition(&st.Conditions, mc.Generation, marinav1alpha1.ConditionDispatching, metav1.ConditionUnknown, j.Reason,
				fmt.Sprintf("the join is not in place (%s); this control plane may still hold the member's dispatch lease, and holds back within %s if it does", j.Reason, r.renewDeadline()))
		default:
			setCondition(&st.Conditions, mc.Generation, marinav1alpha1.ConditionDispatching, metav1.ConditionUnknown, marinav1alpha1.ReasonControlPlaneNotReady,
				fmt.Sprintf("the control plane does not answer, so whether its engine dispatches to the member is not known; a dispatch lease it held lapses after %s unrenewed", r.LeaseDuration))
		}
	}
	preferred := ""
	if len(joined) > 0 && mc.Labels[marinav1alpha1.LabelOriginDataCenter] == "" {
		preferred = slices.Min(joined)
	}
	reachable := p.member != nil && meta.IsStatusConditionTrue(mc.Status.Conditions, marinav1alpha1.ConditionReachable)
	for _, name := range joined {
		fed := p.feds[name]
		st := controlPlaneStatus(mc, name)
		id := dispatch.HolderID(r.DataCenter, mc.Namespace, name)
		key := joinKey{member: mc.UID, controlPlane: name}
		cp := dispatch.ControlPlane{UID: fed.cp.UID, Key: fed.client.key, Client: fed.client.c, Config: fed.client.config, Mapper: join.RESTMapper}
		seed := r.seed(ctx, mc.Namespace, name)
		standBy := func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, suspendTimeout)
			defer cancel()
			return r.suspender.Set(ctx, cp, mc.Name, true, true, seed)
		}
		was := meta.FindStatusCondition(st.Conditions, marinav1alpha1.ConditionDispatching)
		// Held is what this operator knows; the condition may say
		// Unknown after a pass that could not settle it, and a renewal
		// after that is no hand-over.
		_, held := r.held.Load(key)
		wasDispatching := held || was != nil && was.Status == metav1.ConditionTrue

		var out dispatch.Outcome
		var err error
		asked := time.Now()
		if reachable {
			out, err = r.leases.Claim(ctx, p.member.c, string(mc.UID), r.claim(mc, id, name == preferred), standBy)
		} else {
			err = fmt.Errorf("the member's API server does not answer, so its dispatch lease cannot be renewed")
			// A holder keeps dispatching until its renew deadline, well
			// before another data center may take the lease.
			if v, ok := r.held.Load(key); ok && time.Since(v.(time.Time)) < r.renewDeadline() {
				out = dispatch.Outcome{Holder: id, Mine: true}
			}
		}
		handedOver := false
		if out.Mine {
			if reachable {
				// Counted from before the request: the lease was renewed
				// no later than that.
				r.held.Store(key, asked)
				r.armDemotion(key, cp, mc.Name, seed)
			}
			mc.Status.Dispatcher = id
			p.holding = true
			// Handed over just now: the previous holder's engine takes a
			// moment to stop after its policies hold back.
			if !out.Took && !wasDispatching {
				first, _ := r.handedAt.LoadOrStore(key, time.Now())
				if wait := handoverGrace - time.Since(first.(time.Time)); wait > 0 {
					handedOver = true
					p.recheck = wait
				}
			}
		} else {
			r.held.Delete(key)
			r.disarmDemotion(key)
			if out.Holder != "" {
				mc.Status.Dispatcher = out.Holder
			}
		}
		if !handedOver {
			r.handedAt.Delete(key)
		}
		if err != nil {
			log.FromContext(ctx).Info("Dispatch lease", "controlPlane", name, "error", err.Error())
		}
		// The standby holds back at once, the holder lets go within
		// moments: never both dispatching.
		holdBack := !out.Mine || handedOver
		sctx, cancel := context.WithTimeout(ctx, suspendTimeout)
		serr := r.suspender.Set(sctx, cp, mc.Name, holdBack, holdBack, seed)
		cancel()
		if serr == nil {
			serr = r.suspender.Problem(fed.cp.UID)
		}
		set := func(status metav1.ConditionStatus, reason, msg string) {
			setCondition(&st.Conditions, mc.Generation, marinav1alpha1.ConditionDispatching, status, reason, msg)
			r.eventOnChange(p, was, marinav1alpha1.ConditionDispatching+" "+name, status, reason, fmt.Sprintf("control plane %s: %s", name, msg))
		}
		switch {
		case serr != nil && out.Mine:
			p.problem = true
			msg := fmt.Sprintf("this control plane holds the member's dispatch lease, but its propagation policies could not be brought in line: %v", serr)
			set(metav1.ConditionUnknown, marinav1alpha1.ReasonSuspendFailed, msg)
			if was == nil || was.Reason != marinav1alpha1.ReasonSuspendFailed {
				r.Recorder.Eventf(mc, nil, corev1.EventTypeWarning, marinav1alpha1.ReasonSuspendFailed, "Dispatch", "control plane %s: %s", name, msg)
			}
		case handedOver:
			set(metav1.ConditionFalse, marinav1alpha1.ReasonStandby, fmt.Sprintf("the member's dispatch lease was handed to this control plane; it dispatches in %s, once the previous holder's engine has stopped", p.recheck.Round(time.Second)))
		case serr != nil && !out.Mine:
			p.problem = true
			msg := fmt.Sprintf("this control plane should hold back from the member (%s dispatches), but its propagation policies could not be made to: %v", holderOr(out.Holder), serr)
			set(metav1.ConditionUnknown, marinav1alpha1.ReasonSuspendFailed, msg)
			if was == nil || was.Reason != marinav1alpha1.ReasonSuspendFailed {
				r.Recorder.Eventf(mc, nil, corev1.EventTypeWarning, marinav1alpha1.ReasonSuspendFailed, "Dispatch", "control plane %s: %s", name, msg)
			}
		case out.Mine:
			msg := "this control plane dispatches workloads to the member: it holds the member's dispatch lease"
			if err != nil {
				msg += "; renewing it failed, retrying: " + err.Error()
			}
			set(metav1.ConditionTrue, marinav1alpha1.ReasonDispatcher, msg)
			if !wasDispatching {
				how := "took the member's free dispatch lease"
				if out.Previous != "" {
					how = fmt.Sprintf("took the member's dispatch lease from %s, which had not renewed it for %s", out.Previous, r.LeaseDuration)
				}
				r.Recorder.Eventf(mc, nil, corev1.EventTypeNormal, "Dispatching", "Dispatch", "control plane %s dispatches workloads to the member now: it %s", name, how)
			}
		default:
			msg := fmt.Sprintf("%s dispatches workloads to the member; this control plane holds the same policies and join, holds back, and takes over if that lease lapses for %s", holderOr(out.Holder), r.LeaseDuration)
			if err != nil {
				msg += "; " + err.Error()
			}
			set(metav1.ConditionFalse, marinav1alpha1.ReasonStandby, msg)
		}
	}
}

func holderOr(h string) string {
	if h == "" {
		return "another control plane"
	}
	return "control plane " + h
}

func (r *Reconciler) claim(mc *marinav1alpha1.MemberCluster, id string, preferred bool) dispatch.Claim {
	return dispatch.Claim{
		Namespace: join.Namespace,
		ID:        id,
		Preferred: preferred,
		Duration:  r.LeaseDuration,
		Labels:    join.Pair{Cluster: mc.Name}.Labels(),
	}
}

const (
	// suspendTimeout bounds a pass over a control plane's policies that a
	// reconcile waits for.
	suspendTimeout = 30 * time.Second
	// handoverGrace is how long a control plane that was handed the lease
	// keeps holding back: the engine of the one that handed it over
	// stops a moment after its policies hold back (policy, binding, Work).
	handoverGrace = 10 * time.Second
)

// renewDeadline is how long a holder dispatches without renewing its
// lease: two thirds of it, so that it holds back before another control
// plane may take the lease (which waits the whole duration).
func (r *Reconciler) renewDeadline() time.Duration { return r.LeaseDuration * 2 / 3 }

// armDemotion makes the control plane hold back from the member if its
// lease is not renewed by the renew deadline, whatever keeps the renewal
// from happening (a reconcile that backs off, errs or hangs): a timer of
// its own, not the next pass.
func (r *Reconciler) armDemotion(key joinKey, cp dispatch.ControlPlane, member string, seed func() (map[string]bool, error)) {
	d := r.renewDeadline()
	fire := func() {
		v, ok := r.held.Load(key)
		if !ok || time.Since(v.(time.Time)) < d {
			return
		}
		r.held.Delete(key)
		ctx, cancel := context.WithTimeout(context.Background(), suspendTimeout)
		defer cancel()
		_ = r.suspender.Set(ctx, cp, member, true, true, seed)
	}
	if t, ok := r.demotions.Load(key); ok {
		t.(*time.Timer).Reset(d)
		return
	}
	r.demotions.Store(key, time.AfterFunc(d, fire))
}

func (r *Reconciler) disarmDemotion(key joinKey) {
	if t, ok := r.demotions.LoadAndDelete(key); ok {
		t.(*time.Timer).Stop()
	}
}

// seed lists, for a control plane the suspender meets for the first time
// since the operator started, the members its status says it holds back
// from, and those it has not settled yet: until a pass says otherwise, it
// holds back from them, so that a restart never makes two dispatchers.
func (r *Reconciler) seed(ctx context.Context, namespace, controlPlane string) func() (map[string]bool, error) {
	return func() (map[string]bool, error) {
		list := &marinav1alpha1.MemberClusterList{}
		out := map[string]bool{}
		if err := r.Client.List(ctx, list, client.InNamespace(namespace), client.MatchingFields{indexControlPlane: controlPlane}); err != nil {
			return nil, err
		}
		for _, mc := range list.Items {
			st := controlPlaneStatus(&mc, controlPlane)
			if st == nil || !meta.IsStatusConditionTrue(st.Conditions, marinav1alpha1.ConditionJoined) {
				continue
			}
			if !meta.IsStatusConditionTrue(st.Conditions, marinav1alpha1.ConditionDispatching) {
				out[mc.Name] = true
			}
		}
		return out, nil
	}
}

// releaseDispatch lets go of the member in a control plane it is being
// unjoined from: the lease, where this control plane holds it, so that the
// next one takes over at once; and the control plane's holding back.
func (r *Reconciler) releaseDispatch(ctx context.Context, p *pass, name string, fed *federation) error {
	key := joinKey{member: p.mc.UID, controlPlane: name}
	r.held.Delete(key)
	r.disarmDemotion(key)
	r.handedAt.Delete(key)
	if fed != nil {
		r.suspender.Forget(fed.cp.UID, p.mc.Name)
	}
	if p.member == nil {
		return nil
	}
	return r.leases.Release(ctx, p.member.c, string(p.mc.UID), r.claim(p.mc, dispatch.HolderID(r.DataCenter, p.mc.Namespace, name), false))
}
