// Package peer is the sync operator's Peer reconciler. It replicates what
// is authored in this data center's management cluster to another data
// center's: PolicySets (with the ConfigMaps they read), RegistrationPolicies
// and MemberClusters (with the kubeconfig each member's join needs). The
// peer's own operators apply the replicas to the peer's own control planes,
// so no data center needs another to keep running (ARCHITECTURE.md,
// "Multi-data-center").
//
// The origin is authoritative. A replica is labelled with its origin data
// center and annotated with where its original lives; the chart's
// admission policy refuses edits to it by anyone but the origin's
// replicator and the peer's own operators. Deleting an original removes
// its replicas. An object of the same kind and name that the peer holds and
// that is not a replica from here (made there, or replicated from a third
// data center) is a conflict: reported, never overwritten, on either side.
package peer

import (
	"context"
	"crypto/sha256"
	"fmt"
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
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	applyconfig "github.com/marina-platform/marina/internal/apply"
	"github.com/marina-platform/marina/internal/kubeconfig"
	"github.com/marina-platform/marina/internal/secrets"
)

// FieldManager owns, in a peer, every field of the replicas from here;
// its name carries the origin so that two origins never share one.
func FieldManager(dataCenter string) string { return "marina-sync-" + dataCenter }

// Indexes from a Secret or ConfigMap to what reads it.
const (
	indexMemberSecret  = "peer.memberKubeconfigSecret"
	indexConfigMap     = "peer.configMapRef"
	indexPeerSecret    = "peer.kubeconfigSecret"
	defaultPeerKeyName = "kubeconfig"
)

// Reconciler replicates to Peers.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// DataCenter is the operator's: what is authored here originates
	// here.
	DataCenter string
	// Resync is how often a peer is compared in full when nothing changed
	// here: a peer that lost objects (a restore from backup) gets them
	// back. One minute when zero; the comparison is three list requests
	// and no write.
	Resync time.Duration
	// RetryAfter is the first wait after a peer could not be reached or
	// refused a write; it doubles up to five minutes.
	RetryAfter time.Duration
	// APIReader reads originals past the cache before a replica is
	// pruned.
	APIReader client.Reader

	// secrets reads Peers' and members' kubeconfig Secrets without a
	// cache of every Secret in the cluster.
	secrets *secrets.Reader

	mu       sync.Mutex
	peers    map[string]*peerClient
	failures sync.Map
}

// peerClient reaches one peer's management cluster.
type peerClient struct {
	// key identifies the kubeconfig the client was made from.
	key  [32]byte
	c    client.Client
	host string
	// applied remembers, by data object, the content and owners last
	// applied: the peer's identity may write Secrets but not read them,
	// so whether one is in place is known from here.
	applied map[string][32]byte
	// reported is, by replica, the report of a missing Secret last acted
	// on.
	reported map[ref]metav1.Time
}

// SetupWithManager registers the reconciler. Every Peer is reconciled
// when something replicated changes here: a PolicySet, RegistrationPolicy
// or MemberCluster (not their status), a ConfigMap a PolicySet reads, a
// member's kubeconfig Secret or a Peer's own.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Resync == 0 {
		r.Resync = time.Minute
	}
	r.secrets = secrets.NewReader(mgr)
	if r.RetryAfter == 0 {
		r.RetryAfter = 5 * time.Second
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	r.peers = map[string]*peerClient{}
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &marinav1alpha1.MemberCluster{}, indexMemberSecret, func(o client.Object) []string {
		mc := o.(*marinav1alpha1.MemberCluster)
		switch {
		case mc.Spec.KubeconfigSecretRef != nil:
			return []string{mc.Spec.KubeconfigSecretRef.Name}
		case mc.Spec.ClusterRef != nil:
			return []string{mc.Spec.ClusterRef.Name + "-kubeconfig"}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &marinav1alpha1.PolicySet{}, indexConfigMap, func(o client.Object) []string {
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
	if err := idx.IndexField(ctx, &marinav1alpha1.Peer{}, indexPeerSecret, func(o client.Object) []string {
		ref := o.(*marinav1alpha1.Peer).Spec.KubeconfigSecretRef
		return []string{ref.Namespace + "/" + ref.Name}
	}); err != nil {
		return err
	}
	all := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request { return r.allPeers(ctx) })
	replicated := builder.WithPredicates(specOrMetadataChanged())
	return ctrl.NewControllerManagedBy(mgr).
		Named("peer").
		For(&marinav1alpha1.Peer{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&marinav1alpha1.PolicySet{}, all, replicated).
		Watches(&marinav1alpha1.RegistrationPolicy{}, all, replicated).
		Watches(&marinav1alpha1.MemberCluster{}, all, replicated).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return r.peersIfUsed(ctx, &marinav1alpha1.PolicySetList{}, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexConfigMap: o.GetName()})
		})).
		// Metadata only: the data of the few Secrets read comes from
		// r.secrets.
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			if reqs := r.peersIfUsed(ctx, &marinav1alpha1.PeerList{}, client.MatchingFields{indexPeerSecret: o.GetNamespace() + "/" + o.GetName()}); len(reqs) > 0 {
				return reqs
			}
			return r.peersIfUsed(ctx, &marinav1alpha1.MemberClusterList{}, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexMemberSecret: o.GetName()})
		})).
		Complete(r)
}

// specOrMetadataChanged passes what changes a replica: creation, deletion,
// spec (generation), labels and annotations. Status updates (a member's
// probes, every 30 s) do not.
func specOrMetadataChanged() predicate.Predicate {
	return predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{},
		predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
		}, CreateFunc: func(event.CreateEvent) bool { return false }, DeleteFunc: func(event.DeleteEvent) bool { return false },
			GenericFunc: func(event.GenericEvent) bool { return false }})
}

func (r *Reconciler) allPeers(ctx context.Context) []reconcile.Request {
	list := &marinav1alpha1.PeerList{}
	if err := r.Client.List(ctx, list); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, p := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&p)})
	}
	return reqs
}

// peersIfUsed is every Peer when the list finds something that reads the
// object, else none.
func (r *Reconciler) peersIfUsed(ctx context.Context, list client.ObjectList, opts ...client.ListOption) []reconcile.Request {
	if err := r.Client.List(ctx, list, opts...); err != nil || meta.LenList(list) == 0 {
		return nil
	}
	return r.allPeers(ctx)
}

// pass is one reconciliation of one Peer.
type pass struct {
	peer   *marinav1alpha1.Peer
	before *marinav1alpha1.Peer
	// changed counts the writes made to the peer.
	changed int
	// problem asks for the backoff.
	problem bool
}

// Reconcile replicates to one Peer and writes its status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &marinav1alpha1.Peer{}
	if err := r.Client.Get(ctx, req.NamespacedName, p); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !p.DeletionTimestamp.IsZero() {
		// What was replicated stays: the peer's control planes serve it.
		r.forget(req.Name)
		return ctrl.Result{}, nil
	}
	ps := &pass{peer: p, before: p.DeepCopy()}
	p.Status.ObservedGeneration = p.Generation
	start := time.Now()
	res, err := r.sync(ctx, ps)
	if err != nil {
		return ctrl.Result{}, err
	}
	passSeconds.Observe(time.Since(start).Seconds())
	peerWrites.WithLabelValues(p.Name).Add(float64(ps.changed))
	if meta.IsStatusConditionTrue(p.Status.Conditions, marinav1alpha1.ConditionReady) {
		peerReady.WithLabelValues(p.Name).Set(1)
	} else {
		peerReady.WithLabelValues(p.Name).Set(0)
	}
	peerReplicas.WithLabelValues(p.Name).Set(float64(p.Status.ReplicatedObjects))
	if err := r.patchStatus(ctx, ps); err != nil {
		if apierrors.IsConflict(err) {
			return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
		}
		return ctrl.Result{}, err
	}
	return res, nil
}

// sync runs one pass and says when to look again.
func (r *Reconciler) sync(ctx context.Context, ps *pass) (ctrl.Result, error) {
	p := ps.peer
	switch {
	case p.Spec.DataCenter == r.DataCenter:
		msg := fmt.Sprintf("spec.dataCenter is %s, this operator's own data center: a Peer names another data center's management cluster", r.DataCenter)
		r.setCondition(ps, marinav1alpha1.ConditionSynced, metav1.ConditionFalse, marinav1alpha1.ReasonDataCenterMismatch, msg)
		r.setCondition(ps, marinav1alpha1.ConditionReady, metav1.ConditionFalse, marinav1alpha1.ReasonDataCenterMismatch, msg)
		return ctrl.Result{}, nil
	case p.Spec.Suspend:
		msg := "spec.suspend is true: nothing is replicated to the peer, and what was stays there as it is"
		r.setCondition(ps, marinav1alpha1.ConditionSynced, metav1.ConditionFalse, marinav1alpha1.ReasonSuspended, msg)
		r.setCondition(ps, marinav1alpha1.ConditionReady, metav1.ConditionFalse, marinav1alpha1.ReasonSuspended, msg)
		return ctrl.Result{}, nil
	}
	pc, reason, msg := r.peerClient(ctx, p)
	var remote map[ref]client.Object
	if pc != nil {
		var err error
		if remote, err = pc.list(ctx); err != nil {
			reason, msg = marinav1alpha1.ReasonPeerUnreachable, fmt.Sprintf("the management cluster of data center %s at %s: %v", p.Spec.DataCenter, pc.host, err)
		}
	}
	if reason != "" {
		ps.problem = true
		r.setCondition(ps, marinav1alpha1.ConditionReachable, metav1.ConditionFalse, reason, msg)
		r.setCondition(ps, marinav1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
		return r.next(p, ps), nil
	}
	r.setCondition(ps, marinav1alpha1.ConditionReachable, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded,
		fmt.Sprintf("the management cluster of data center %s answers at %s", p.Spec.DataCenter, pc.host))

	want, waiting, err := r.desired(ctx)
	if err != nil {
		return ctrl.Result{}, err
	}
	out := r.replicate(ctx, pc, ps, want, waiting, remote)

	p.Status.ReplicatedObjects = int32(out.inPlace)
	p.Status.Conflicts = out.conflicts
	if len(p.Status.Conflicts) > 32 {
		p.Status.Conflicts = p.Status.Conflicts[:32]
	}
	switch {
	case len(out.failed) > 0:
		ps.problem = true
		msg := fmt.Sprintf("%d objects not replicated: %s", len(out.failed), strings.Join(out.failed, "; "))
		r.setCondition(ps, marinav1alpha1.ConditionSynced, metav1.ConditionFalse, marinav1alpha1.ReasonApplyFailed, msg)
		r.setCondition(ps, marinav1alpha1.ConditionReady, metav1.ConditionFalse, marinav1alpha1.ReasonApplyFailed, msg)
	case len(out.conflicts) > 0:
		msg := fmt.Sprintf("%d objects not replicated: data center %s holds objects of the same kind and name that are not replicas from %s (rename one of each pair): %s",
			len(out.conflicts), p.Spec.DataCenter, r.DataCenter, strings.Join(out.conflicts, "; "))
		r.setCondition(ps, marinav1alpha1.ConditionSynced, metav1.ConditionFalse, marinav1alpha1.ReasonConflict, msg)
		r.setCondition(ps, marinav1alpha1.ConditionReady, metav1.ConditionFalse, marinav1alpha1.ReasonConflict, msg)
	default:
		msg := fmt.Sprintf("%d objects replicated", out.inPlace)
		if len(waiting) > 0 {
			var w []string
			for k, why := range waiting {
				w = append(w, k.String()+": "+why)
			}
			slices.Sort(w)
			msg += fmt.Sprintf("; %d wait to be: %s", len(w), strings.Join(w, "; "))
		}
		r.setCondition(ps, marinav1alpha1.ConditionSynced, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded, msg)
		r.setCondition(ps, marinav1alpha1.ConditionReady, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded,
			fmt.Sprintf("data center %s holds every replica from %s", p.Spec.DataCenter, r.DataCenter))
	}
	return r.next(p, ps), nil
}

// outcome is what one pass did to a peer.
type outcome struct {
	inPlace   int
	conflicts []string
	failed    []string
}

// dataObject is a ConfigMap or Secret to hold in the peer and the
// replicas that own it there.
type dataObject struct {
	obj    client.Object
	owners []ref
}

// replicate applies what is missing or different, prunes the replicas of
// originals that are gone, and leaves alone what is in place and what the
// peer holds as its own.
func (r *Reconciler) replicate(ctx context.Context, pc *peerClient, ps *pass, want []replica, waiting map[ref]string, remote map[ref]client.Object) outcome {
	var out outcome
	fm := FieldManager(r.DataCenter)
	uids := map[ref]types.UID{}
	wanted := map[ref]bool{}
	data := map[string]*dataObject{}
	var dataKeys []string
	var toApply []replica
	for _, rep := range want {
		wanted[rep.ref] = true
		got := remote[rep.ref]
		if got != nil {
			if o := got.GetLabels()[marinav1alpha1.LabelOriginDataCenter]; o != r.DataCenter {
				where := "made there"
				if o != "" {
					where = "a replica from data center " + o
				}
				out.conflicts = append(out.conflicts, fmt.Sprintf("%s (%s)", rep.ref, where))
				continue
			}
			uids[rep.ref] = got.GetUID()
			// The peer's identity may not read Secrets, so what says a
			// replica's kubeconfig is gone there (removed past the
			// admission policy, an etcd restored without it) is the peer's
			// own register operator, on the replica: write it again.
			// Once per report: a status that stays stale (the peer's
			// operator down) costs no write at every pass.
			if mc, ok := got.(*marinav1alpha1.MemberCluster); ok {
				if at := secretMissing(mc); at != nil && !at.Equal(ptr.To(pc.reported[rep.ref])) {
					if pc.reported == nil {
						pc.reported = map[ref]metav1.Time{}
					}
					pc.reported[rep.ref] = *at
					for _, d := range rep.data {
						delete(pc.applied, dataKey(d))
					}
				}
			}
		}
		for _, d := range rep.data {
			k := dataKey(d)
			if data[k] == nil {
				data[k] = &dataObject{obj: d}
				dataKeys = append(dataKeys, k)
			}
			data[k].owners = append(data[k].owners, rep.ref)
		}
		if got == nil || !same(rep.obj, got) {
			toApply = append(toApply, rep)
		}
	}
	failedRefs := map[ref]bool{}
	fail := func(what string, err error) {
		out.failed = append(out.failed, fmt.Sprintf("%s: %s", what, explain(err, ps.peer.Spec.DataCenter)))
	}
	// Data first, so a replica never arrives before what it reads; then
	// the replicas; then the data again where it now knows its owners.
	slices.Sort(dataKeys)
	applyData := func() {
		for _, k := range dataKeys {
			d := data[k]
			slices.SortFunc(d.owners, func(a, b ref) int { return strings.Compare(a.String(), b.String()) })
			var owners []metav1.OwnerReference
			var ownerUIDs []types.UID
			for _, o := range d.owners {
				if uid := uids[o]; uid != "" {
					owners = append(owners, metav1.OwnerReference{APIVersion: marinav1alpha1.GroupVersion.String(), Kind: o.kind, Name: o.key.Name, UID: uid})
					ownerUIDs = append(ownerUIDs, uid)
				}
			}
			h := dataHash(d.obj, ownerUIDs)
			if pc.applied[k] == h {
				continue
			}
			obj := d.obj.DeepCopyObject().(client.Object)
			obj.SetOwnerReferences(owners)
			if _, err := apply(ctx, pc.c, obj, fm); err != nil {
				delete(pc.applied, k)
				fail(k, err)
				for _, o := range d.owners {
					failedRefs[o] = true
				}
				continue
			}
			pc.applied[k] = h
			ps.changed++
		}
	}
	applyData()
	for _, rep := range toApply {
		if failedRefs[rep.ref] {
			continue
		}
		// A replica that is new is created, so that an object of that
		// name made there since the list is a conflict on the next pass,
		// not taken over. One that is there is replaced, as listed (its
		// resourceVersion): the origin owns all of it but what the peer's
		// own operators keep there (finalizers, a policy-made member's
		// control planes, status), so a field the original lost goes
		// from the replica too.
		obj := rep.obj.DeepCopyObject().(client.Object)
		var err error
		if uids[rep.ref] == "" {
			err = pc.c.Create(ctx, obj, client.FieldOwner(fm))
		} else {
			obj = replaceInto(remote[rep.ref], rep.obj)
			err = pc.c.Update(ctx, obj, client.FieldOwner(fm))
		}
		uid := obj.GetUID()
		if err != nil {
			failedRefs[rep.ref] = true
			fail(rep.ref.String(), err)
			continue
		}
		uids[rep.ref] = uid
		ps.changed++
	}
	applyData()

	// Prune: a replica from here whose original is gone. One waiting for
	// its original's credentials stays as it is.
	for id, got := range remote {
		if got.GetLabels()[marinav1alpha1.LabelOriginDataCenter] != r.DataCenter {
			continue
		}
		if wanted[id] || waiting[id] != "" {
			if !failedRefs[id] {
				out.inPlace++
			}
			continue
		}
		if !got.GetDeletionTimestamp().IsZero() {
			continue
		}
		// The cache may lag (a leader that just took over, an original
		// made a moment ago): the original must be gone for sure before
		// its replica goes, which unjoins a member or prunes a set there.
		if exists, err := r.originalExists(ctx, id); err != nil || exists {
			if err != nil {
				fail(id.String(), err)
			}
			continue
		}
		uid := got.GetUID()
		if err := pc.c.Delete(ctx, got, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			fail(id.String(), err)
			continue
		}
		ps.changed++
		r.Recorder.Eventf(ps.peer, nil, corev1.EventTypeNormal, "Pruned", "Replicate",
			"deleted the replica of %s in data center %s: its original is gone", id, ps.peer.Spec.DataCenter)
	}
	for id := range wanted {
		if remote[id] == nil && uids[id] != "" && !failedRefs[id] {
			out.inPlace++
		}
	}
	slices.Sort(out.conflicts)
	slices.Sort(out.failed)
	return out
}

// secretMissing is when a member's register operator reported its
// kubeconfig Secret as not there, or nil.
func secretMissing(mc *marinav1alpha1.MemberCluster) *metav1.Time {
	c := meta.FindStatusCondition(mc.Status.Conditions, marinav1alpha1.ConditionReachable)
	if c != nil && c.Status == metav1.ConditionFalse && c.Reason == marinav1alpha1.ReasonSecretNotFound {
		return &c.LastTransitionTime
	}
	return nil
}

func dataKey(o client.Object) string {
	kind := "ConfigMap"
	if _, ok := o.(*corev1.Secret); ok {
		kind = "Secret"
	}
	return kind + " " + o.GetNamespace() + "/" + o.GetName()
}

// explain turns a refusal into what a person does about it.
func explain(err error, dataCenter string) string {
	switch {
	case apierrors.IsNotFound(err) && strings.Contains(err.Error(), "namespaces"):
		return fmt.Sprintf("its namespace does not exist in data center %s; create it there (%v)", dataCenter, err)
	case apierrors.IsForbidden(err):
		return fmt.Sprintf("the peer refused the write (check the Peer's credentials and the peer's admission policy): %v", err)
	}
	return err.Error()
}

// apply writes obj to the peer with server-side apply and returns the
// UID it has there.
func apply(ctx context.Context, c client.Client, obj client.Object, fieldManager string) (types.UID, error) {
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return "", err
	}
	u, err := applyconfig.Configuration(obj)
	if err != nil {
		return "", err
	}
	u.SetGroupVersionKind(gvk)
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
		return "", err
	}
	return u.GetUID(), nil
}

// list reads every object of the replicated kinds the peer holds,
// replicas from here and not.
func (pc *peerClient) list(ctx context.Context) (map[ref]client.Object, error) {
	out := map[ref]client.Object{}
	policySets := &marinav1alpha1.PolicySetList{}
	if err := pc.c.List(ctx, policySets); err != nil {
		return nil, err
	}
	for i := range policySets.Items {
		out[ref{kindPolicySet, client.ObjectKeyFromObject(&policySets.Items[i])}] = &policySets.Items[i]
	}
	policies := &marinav1alpha1.RegistrationPolicyList{}
	if err := pc.c.List(ctx, policies); err != nil {
		return nil, err
	}
	for i := range policies.Items {
		out[ref{kindRegistrationPolicy, client.ObjectKeyFromObject(&policies.Items[i])}] = &policies.Items[i]
	}
	members := &marinav1alpha1.MemberClusterList{}
	if err := pc.c.List(ctx, members); err != nil {
		return nil, err
	}
	for i := range members.Items {
		out[ref{kindMemberCluster, client.ObjectKeyFromObject(&members.Items[i])}] = &members.Items[i]
	}
	return out, nil
}

// peerClient is the client of a Peer's management cluster, made again when
// its kubeconfig changes; or the reason and message why there is none.
func (r *Reconciler) peerClient(ctx context.Context, p *marinav1alpha1.Peer) (*peerClient, string, string) {
	ref := p.Spec.KubeconfigSecretRef
	s := &corev1.Secret{}
	if err := r.secrets.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, marinav1alpha1.ReasonSecretNotFound, fmt.Sprintf("spec.kubeconfigSecretRef: Secret %s/%s does not exist", ref.Namespace, ref.Name)
		}
		return nil, marinav1alpha1.ReasonStageFailed, fmt.Sprintf("read Secret %s/%s: %v", ref.Namespace, ref.Name, err)
	}
	data := s.Data[ref.KeyOr(defaultPeerKeyName)]
	if len(data) == 0 {
		return nil, marinav1alpha1.ReasonInvalidSecret, fmt.Sprintf("spec.kubeconfigSecretRef: Secret %s/%s has no key %s", ref.Namespace, ref.Name, ref.KeyOr(defaultPeerKeyName))
	}
	key := sha256.Sum256(data)
	r.mu.Lock()
	defer r.mu.Unlock()
	if pc, ok := r.peers[p.Name]; ok && pc.key == key {
		return pc, "", ""
	}
	cfg, err := kubeconfig.RESTConfig(data)
	if err != nil {
		return nil, marinav1alpha1.ReasonInvalidSecret, fmt.Sprintf("spec.kubeconfigSecretRef: Secret %s/%s: %v", ref.Namespace, ref.Name, err)
	}
	cfg.Timeout = 15 * time.Second
	cfg.QPS, cfg.Burst = 20, 40
	cfg.UserAgent = FieldManager(r.DataCenter)
	c, err := client.New(cfg, client.Options{Scheme: r.Client.Scheme()})
	if err != nil {
		return nil, marinav1alpha1.ReasonPeerUnreachable, fmt.Sprintf("the management cluster of data center %s at %s: %v", p.Spec.DataCenter, cfg.Host, err)
	}
	pc := &peerClient{key: key, c: c, host: cfg.Host, applied: map[string][32]byte{}}
	r.peers[p.Name] = pc
	return pc, "", ""
}

func (r *Reconciler) forget(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.peers, name)
	r.failures.Delete(name)
	peerWrites.DeleteLabelValues(name)
	peerReady.DeleteLabelValues(name)
	peerReplicas.DeleteLabelValues(name)
}

// next is when to look again: with a growing backoff while a problem
// lasts, else at the resync.
func (r *Reconciler) next(p *marinav1alpha1.Peer, ps *pass) ctrl.Result {
	if !ps.problem {
		r.failures.Delete(p.Name)
		return ctrl.Result{RequeueAfter: jitter(r.Resync)}
	}
	n := 0
	if v, ok := r.failures.Load(p.Name); ok {
		n = v.(int)
	}
	r.failures.Store(p.Name, n+1)
	return ctrl.Result{RequeueAfter: jitter(min(r.RetryAfter<<min(n, 6), 5*time.Minute))}
}

// jitter spreads d by ±10 %.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

// setCondition sets a condition; one that turns False with a new reason
// is also a Warning Event.
func (r *Reconciler) setCondition(ps *pass, typ string, status metav1.ConditionStatus, reason, msg string) {
	if len(msg) > 4096 {
		msg = msg[:4096] + "…"
	}
	old := meta.FindStatusCondition(ps.before.Status.Conditions, typ)
	meta.SetStatusCondition(&ps.peer.Status.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: ps.peer.Generation})
	if typ == marinav1alpha1.ConditionReady || status != metav1.ConditionFalse || (old != nil && old.Status == status && old.Reason == reason) {
		return
	}
	r.Recorder.Eventf(ps.peer, nil, corev1.EventTypeWarning, reason, typ, "%s", msg)
}

// patchStatus writes the status when it changed; lastSyncTime is set when
// the pass changed something in the peer or the peer came in sync, so a
// quiet federation costs no status writes either.
func (r *Reconciler) patchStatus(ctx context.Context, ps *pass) error {
	p := ps.peer
	if meta.IsStatusConditionTrue(p.Status.Conditions, marinav1alpha1.ConditionSynced) {
		last := p.Status.LastSyncTime
		wasSynced := meta.IsStatusConditionTrue(ps.before.Status.Conditions, marinav1alpha1.ConditionSynced)
		if ps.changed > 0 || !wasSynced || last == nil {
			now := metav1.Now()
			p.Status.LastSyncTime = &now
		}
	}
	if equality.Semantic.DeepEqual(ps.before.Status, p.Status) {
		return nil
	}
	return r.Client.Status().Patch(ctx, p, client.MergeFromWithOptions(ps.before, client.MergeFromWithOptimisticLock{}))
}
