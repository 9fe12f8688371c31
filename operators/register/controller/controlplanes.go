package controller

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/operators/register/join"
)

// joinKey names one (member, control plane) pair.
type joinKey struct {
	member       types.UID
	controlPlane string
}

// joinRecord is the last join of a pair that completed.
type joinRecord struct {
	// intent identifies what the join was made from: the member's
	// kubeconfig, the control plane's credentials, the properties.
	intent [32]byte
	at     time.Time
}

// federation is a control plane as the register operator reaches it.
type federation struct {
	cp     *marinav1alpha1.ControlPlane
	client clientEntry
}

// controlPlane finds a ControlPlane of the member's namespace and a client
// of its API server, or the reason why not.
func (r *Reconciler) controlPlane(ctx context.Context, namespace, name string) (*federation, string, string) {
	cp := &marinav1alpha1.ControlPlane{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, cp); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, marinav1alpha1.ReasonControlPlaneNotFound, fmt.Sprintf("ControlPlane %s does not exist in namespace %s", name, namespace)
		}
		return nil, marinav1alpha1.ReasonStageFailed, fmt.Sprintf("read ControlPlane %s: %v", name, err)
	}
	if cp.Spec.DataCenter != r.DataCenter {
		return nil, marinav1alpha1.ReasonDataCenterMismatch, fmt.Sprintf("ControlPlane %s belongs to data center %s; this operator serves %s, and the register operator there joins its own control planes", name, cp.Spec.DataCenter, r.DataCenter)
	}
	if !cp.DeletionTimestamp.IsZero() {
		return nil, marinav1alpha1.ReasonControlPlaneNotReady, fmt.Sprintf("ControlPlane %s is being deleted", name)
	}
	if !meta.IsStatusConditionTrue(cp.Status.Conditions, marinav1alpha1.ConditionAPIServerReady) {
		return nil, marinav1alpha1.ReasonControlPlaneNotReady, fmt.Sprintf("ControlPlane %s is not ready to serve yet (its APIServerReady condition is not True)", name)
	}
	// The register operator's own identity there, which may join and
	// unjoin members and nothing else; never the admin kubeconfig.
	ref := cp.Status.RegistrationKubeconfigSecretRef
	if ref == nil {
		return nil, marinav1alpha1.ReasonControlPlaneNotReady, fmt.Sprintf("ControlPlane %s has not published the register operator's kubeconfig yet (status.registrationKubeconfigSecretRef): the controlplane operator does once the API server serves", name)
	}
	sec := &corev1.Secret{}
	if err := r.secrets.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, sec); err != nil {
		return nil, marinav1alpha1.ReasonControlPlaneNotReady, fmt.Sprintf("ControlPlane %s: the register operator's kubeconfig Secret %s: %v", name, ref.Name, err)
	}
	e, err := r.clients.fromKubeconfig("controlplane/"+string(cp.UID), sec.Data[ref.KeyOr("kubeconfig")])
	if err != nil {
		return nil, marinav1alpha1.ReasonControlPlaneNotReady, fmt.Sprintf("ControlPlane %s: %v", name, err)
	}
	return &federation{cp: cp, client: e}, "", ""
}

func (r *Reconciler) pair(p *pass, name string, fed *federation) join.Pair {
	jp := join.Pair{
		Cluster:        p.mc.Name,
		ControlPlaneID: join.ControlPlaneID(r.DataCenter, p.mc.Namespace, name),
		Properties:     p.mc.Spec.ClusterProperties,
		RotateAfter:    r.TokenRotation,
		RevokeAfter:    r.TokenRevokeAfter,
	}
	if v := p.mc.Annotations[AnnotationRotateTokens]; v != "" {
		// A bad or future value rotates nothing (reconcileNormal reports
		// it): a time to come would be due on every pass.
		if at, err := time.Parse(time.RFC3339, v); err == nil && !at.After(time.Now()) {
			jp.RotateBefore = at
		}
	}
	if p.member != nil {
		jp.Member, jp.MemberConfig = p.member.c, p.member.config
	}
	if fed != nil {
		jp.Federation = fed.client.c
	}
	return jp
}

// reconcileControlPlane joins the member to one control plane of its spec
// and reports Joined and Ready there.
func (r *Reconciler) reconcileControlPlane(ctx context.Context, p *pass, name string) {
	mc := p.mc
	st := ensureControlPlaneStatus(mc, name)
	var oldJoined *metav1.Condition
	if s := controlPlaneStatus(p.before, name); s != nil {
		oldJoined = meta.FindStatusCondition(s.Conditions, marinav1alpha1.ConditionJoined)
	}
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		setCondition(&st.Conditions, mc.Generation, typ, status, reason, msg)
	}
	notJoined := func(reason, msg string) {
		if meta.IsStatusConditionTrue(st.Conditions, marinav1alpha1.ConditionJoined) && reason == marinav1alpha1.ReasonControlPlaneNotReady {
			// A joined member stays joined while its control plane is
			// briefly away (an upgrade): only Ready says so.
			set(marinav1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
			return
		}
		set(marinav1alpha1.ConditionJoined, metav1.ConditionFalse, reason, msg)
		set(marinav1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
		r.eventOnChange(p, oldJoined, marinav1alpha1.ConditionJoined+" "+name, metav1.ConditionFalse, reason, fmt.Sprintf("control plane %s: %s", name, msg))
	}

	fed, reason, msg := r.controlPlane(ctx, mc.Namespace, name)
	if fed != nil {
		p.feds[name] = fed
	}
	if fed == nil {
		if reason != marinav1alpha1.ReasonControlPlaneNotReady {
			p.problem = true
		}
		if reason == marinav1alpha1.ReasonControlPlaneNotFound && oldJoined != nil && oldJoined.Status == metav1.ConditionTrue && p.member != nil {
			// The control plane went away while the member was joined:
			// its tokens in the member go too; the entry stays in the
			// spec until a person removes it.
			if err := join.UnjoinMember(ctx, r.pair(p, name, nil)); err != nil {
				msg += fmt.Sprintf("; removing its tokens from the member failed, retrying: %v", err)
				set(marinav1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
				return
			}
			r.joins.Delete(joinKey{member: mc.UID, controlPlane: name})
			r.Recorder.Eventf(mc, nil, corev1.EventTypeNormal, "Unjoined", "Unjoin", "control plane %s is gone: its tokens were removed from the member", name)
		}
		notJoined(reason, msg)
		return
	}
	if p.member == nil {
		reach := meta.FindStatusCondition(mc.Status.Conditions, marinav1alpha1.ConditionReachable)
		if meta.IsStatusConditionTrue(st.Conditions, marinav1alpha1.ConditionJoined) {
			r.readiness(ctx, p, st, fed, name)
			return
		}
		if reach != nil {
			notJoined(reach.Reason, "the member cannot be joined: "+reach.Message)
		}
		return
	}
	reachable := meta.IsStatusConditionTrue(mc.Status.Conditions, marinav1alpha1.ConditionReachable)
	if !reachable && !meta.IsStatusConditionTrue(st.Conditions, marinav1alpha1.ConditionJoined) {
		reach := meta.FindStatusCondition(mc.Status.Conditions, marinav1alpha1.ConditionReachable)
		notJoined(reach.Reason, "the member cannot be joined: "+reach.Message)
		return
	}

	jp := r.pair(p, name, fed)
	key := joinKey{member: mc.UID, controlPlane: name}
	intent := joinIntent(p, fed)
	if v, ok := r.joins.Load(key); ok && reachable {
		rec := v.(joinRecord)
		if rec.intent == intent && time.Since(rec.at) < r.ResyncInterval && meta.IsStatusConditionTrue(st.Conditions, marinav1alpha1.ConditionJoined) {
			r.readiness(ctx, p, st, fed, name)
			return
		}
	}
	if !reachable {
		// Joined before, unreachable now: nothing to redo until it answers.
		r.readiness(ctx, p, st, fed, name)
		return
	}

	start := time.Now()
	res, err := join.Join(ctx, jp)
	switch {
	case join.IsConflict(err):
		p.problem = true
		notJoined(marinav1alpha1.ReasonConflict, err.Error())
		return
	case err != nil:
		p.problem = true
		notJoined(marinav1alpha1.ReasonJoinFailed, err.Error())
		return
	case res.Waiting != "":
		p.soon = true
		notJoined(marinav1alpha1.ReasonProgressing, res.Waiting)
		return
	}
	joinSeconds.Observe(time.Since(start).Seconds())
	if res.Rotating {
		// A new token is being filled: hand it over on the next pass.
		p.soon = true
	} else {
		r.joins.Store(key, joinRecord{intent: intent, at: time.Now()})
	}
	set(marinav1alpha1.ConditionJoined, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded,
		fmt.Sprintf("joined to control plane %s as Cluster %s (push mode)", name, mc.Name))
	if oldJoined == nil || oldJoined.Status != metav1.ConditionTrue {
		r.Recorder.Eventf(mc, nil, corev1.EventTypeNormal, "Joined", "Join", "joined to control plane %s as Cluster %s", name, mc.Name)
		log.FromContext(ctx).Info("Joined", "controlPlane", name, "cluster", mc.Name, "seconds", time.Since(start).Seconds())
	}
	r.readiness(ctx, p, st, fed, name)
}

// joinIntent identifies what a join is made from, so that a change to any
// of it redoes the join at once rather than at the next resync.
func joinIntent(p *pass, fed *federation) [32]byte {
	h := sha256.New()
	if p.creds != nil {
		h.Write(p.creds.key[:])
	}
	h.Write(fed.client.key[:])
	h.Write([]byte(fed.cp.UID))
	b, _ := json.Marshal(p.mc.Spec.ClusterProperties)
	h.Write(b)
	// A rotation asked for redoes the join at once.
	h.Write([]byte(p.mc.Annotations[AnnotationRotateTokens]))
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// readiness sets Ready in one control plane: the engine's own Ready
// condition of the Cluster where the engine runs, Marina's probe where it
// does not (the Cluster has no conditions then).
func (r *Reconciler) readiness(ctx context.Context, p *pass, st *marinav1alpha1.MemberControlPlaneStatus, fed *federation, name string) {
	mc := p.mc
	set := func(status metav1.ConditionStatus, reason, msg string) {
		setCondition(&st.Conditions, mc.Generation, marinav1alpha1.ConditionReady, status, reason, msg)
	}
	cluster := &unstructured.Unstructured{}
	cluster.SetGroupVersionKind(join.ClusterGVK)
	if err := fed.client.c.Get(ctx, client.ObjectKey{Name: mc.Name}, cluster); err != nil {
		set(metav1.ConditionFalse, marinav1alpha1.ReasonControlPlaneNotReady, fmt.Sprintf("read Cluster %s in control plane %s: %v", mc.Name, name, err))
		return
	}
	conds, _, _ := unstructured.NestedSlice(cluster.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] != marinav1alpha1.ConditionReady {
			continue
		}
		status, _ := m["status"].(string)
		reason, _ := m["reason"].(string)
		msg, _ := m["message"].(string)
		if reason == "" {
			reason = "EngineReported"
		}
		set(metav1.ConditionStatus(status), reason, "the engine reports: "+msg)
		return
	}
	// Where the engine runs, it reports within seconds of the join: look
	// again soon for a minute, so that Ready mirrors it from the start.
	if v, ok := r.joins.Load(joinKey{member: mc.UID, controlPlane: name}); ok && time.Since(v.(joinRecord).at) < time.Minute {
		p.recheck = 5 * time.Second
	}
	reach := meta.FindStatusCondition(mc.Status.Conditions, marinav1alpha1.ConditionReachable)
	if reach != nil && reach.Status == metav1.ConditionTrue {
		set(metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded, "the member's API server answers Marina's probe (the engine reports no condition)")
		return
	}
	msg := "the member's API server does not answer"
	reason := marinav1alpha1.ReasonClusterUnreachable
	if reach != nil {
		msg, reason = reach.Message, reach.Reason
	}
	set(metav1.ConditionFalse, reason, msg)
}

// unjoinState is where an unjoin from one control plane stands.
type unjoinState int

const (
	unjoinFederationPending unjoinState = iota
	unjoinMemberPending
	unjoinDone
)

// unjoinControlPlane unjoins the member from one control plane: its side
// first (the engine stops using the member), then the member's. What is
// left is reported in the control plane's status entry.
func (r *Reconciler) unjoinControlPlane(ctx context.Context, p *pass, name string) unjoinState {
	mc := p.mc
	st := ensureControlPlaneStatus(mc, name)
	report := func(msg string) {
		setCondition(&st.Conditions, mc.Generation, marinav1alpha1.ConditionJoined, metav1.ConditionFalse, marinav1alpha1.ReasonDeleting, msg)
	}
	fed, reason, msg := r.controlPlane(ctx, mc.Namespace, name)
	switch {
	case fed != nil:
		done, err := join.UnjoinFederation(ctx, r.pair(p, name, fed))
		if err != nil {
			report(fmt.Sprintf("unjoining from control plane %s: %v", name, err))
			return unjoinFederationPending
		}
		if !done {
			p.soon = true
			report(fmt.Sprintf("waiting for control plane %s to delete Cluster %s (the engine removes what it propagated to the member first)", name, mc.Name))
			return unjoinFederationPending
		}
	case reason == marinav1alpha1.ReasonControlPlaneNotFound:
		// A control plane that is gone holds nothing any more.
	case reason == marinav1alpha1.ReasonDataCenterMismatch:
		// Another data center's: nothing of this operator's is there.
	default:
		report(fmt.Sprintf("cannot unjoin from control plane %s yet: %s", name, msg))
		return unjoinFederationPending
	}
	r.joins.Delete(joinKey{member: mc.UID, controlPlane: name})
	if err := r.releaseDispatch(ctx, p, name, fed); err != nil {
		report(fmt.Sprintf("unjoined from control plane %s; releasing the member's dispatch lease failed, retrying: %v", name, err))
		return unjoinMemberPending
	}
	if p.member == nil && p.memberGone {
		// The cluster itself is being deleted: its side goes with it.
		return unjoinDone
	}
	if p.member == nil {
		report(fmt.Sprintf("unjoined from control plane %s; the member's side (token Secrets in namespace %s) is cleaned once the member's credentials work again", name, join.Namespace))
		return unjoinMemberPending
	}
	if err := join.UnjoinMember(ctx, r.pair(p, name, nil)); err != nil {
		if p.memberGone {
			// Its cluster is being deleted and no longer answers.
			return unjoinDone
		}
		report(fmt.Sprintf("unjoined from control plane %s; cleaning the member's side failed, retrying: %v", name, err))
		return unjoinMemberPending
	}
	return unjoinDone
}
