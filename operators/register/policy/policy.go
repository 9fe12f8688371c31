// Package policy is the register operator's RegistrationPolicy
// reconciler: it turns the sources a policy selects (Cluster API Clusters,
// labelled kubeconfig Secrets) into MemberClusters it owns, joined to the
// control planes it selects, and deletes those whose source went away (the
// MemberCluster reconciler then unjoins them).
package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/secrets"
	"github.com/marina-platform/marina/operators/register/capi"
)

// LabelRegistrationPolicy names the policy a MemberCluster was made by.
const LabelRegistrationPolicy = "marina.dev/registration-policy"

// maxControlPlanes is MemberCluster spec.controlPlanes' limit.
const maxControlPlanes = 16

// Reconciler makes and removes a RegistrationPolicy's MemberClusters.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// DataCenter is the operator's: a policy selects only its control
	// planes.
	DataCenter string
	// capi is the Cluster API Cluster kind served, if any.
	capi *schema.GroupVersionKind
	// cache lists Secrets' metadata.
	cache client.Reader
}

// SetupWithManager registers the reconciler; a change to any source, to a
// ControlPlane or to one of its MemberClusters runs the policies of that
// namespace again.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.capi = capi.Served(mgr.GetRESTMapper())
	r.cache = mgr.GetCache()
	all := handler.EnqueueRequestsFromMapFunc(r.policiesOf)
	b := ctrl.NewControllerManagedBy(mgr).
		Named("registrationpolicy").
		For(&marinav1alpha1.RegistrationPolicy{}).
		Owns(&marinav1alpha1.MemberCluster{}).
		Watches(&marinav1alpha1.MemberCluster{}, handler.EnqueueRequestsFromMapFunc(replicaPolicyOf)).
		Watches(&marinav1alpha1.ControlPlane{}, all).
		WatchesMetadata(&corev1.Secret{}, all)
	if r.capi != nil {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(*r.capi)
		b = b.Watches(u, all)
	}
	return b.Complete(r)
}

// replicaPolicyOf maps a replica MemberCluster to the replica policy that
// made its original, which no owner reference says: UIDs differ between
// data centers.
func replicaPolicyOf(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[LabelRegistrationPolicy]
	if name == "" || o.GetLabels()[marinav1alpha1.LabelOriginDataCenter] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
}

// policiesOf maps an object to every policy of its namespace: a policy's
// selectors are cheap to evaluate, and there are few policies.
func (r *Reconciler) policiesOf(ctx context.Context, o client.Object) []reconcile.Request {
	list := &marinav1alpha1.RegistrationPolicyList{}
	if err := r.Client.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, p := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&p)})
	}
	return out
}

// source is one cluster a policy selects.
type source struct {
	name string
	spec marinav1alpha1.MemberClusterSpec
}

// Reconcile makes the policy's MemberClusters match its sources.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rp := &marinav1alpha1.RegistrationPolicy{}
	if err := r.Client.Get(ctx, req.NamespacedName, rp); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !rp.DeletionTimestamp.IsZero() {
		// Its MemberClusters go with it (owner references), each unjoined
		// by its own finalizer.
		return ctrl.Result{}, nil
	}
	before := rp.DeepCopy()
	rp.Status.ObservedGeneration = rp.Generation

	var problems []string
	controlPlanes, err := r.controlPlanes(ctx, rp)
	if err != nil {
		problems = append(problems, err.Error())
	}
	// A selector that cannot be read leaves every member's control planes
	// as they are, rather than taking them all away.
	keepControlPlanes := controlPlanes == nil && err != nil
	if origin := rp.Labels[marinav1alpha1.LabelOriginDataCenter]; origin != "" {
		return ctrl.Result{}, r.reconcileReplica(ctx, rp, before, origin, controlPlanes, keepControlPlanes, problems)
	}
	sources, evaluated, skipped, err := r.sources(ctx, rp)
	if err != nil {
		return ctrl.Result{}, err
	}
	problems = append(problems, skipped...)
	rp.Status.MatchedClusters = int32(len(sources))
	rp.Status.MatchedControlPlanes = int32(len(controlPlanes))

	want := map[string]bool{}
	for _, s := range sources {
		want[s.name] = true
		msg, err := r.ensureMember(ctx, rp, s, controlPlanes, keepControlPlanes)
		if err != nil {
			return ctrl.Result{}, err
		}
		if msg != "" {
			problems = append(problems, msg)
		}
	}
	if err := r.prune(ctx, rp, want, evaluated); err != nil {
		return ctrl.Result{}, err
	}

	switch {
	case len(problems) > 0:
		r.conflict(rp, before, problems)
	case len(controlPlanes) == 0:
		setReady(rp, metav1.ConditionFalse, marinav1alpha1.ReasonControlPlaneNotFound,
			fmt.Sprintf("spec.controlPlaneSelector selects no ControlPlane of data center %s in namespace %s", r.DataCenter, rp.Namespace))
	case rp.Spec.Approval == marinav1alpha1.ApprovalManual:
		setReady(rp, metav1.ConditionTrue, marinav1alpha1.ReasonAwaitingApproval,
			fmt.Sprintf("%d clusters registered; a person approves each by naming control planes in its MemberCluster's spec.controlPlanes", len(sources)))
	default:
		setReady(rp, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded,
			fmt.Sprintf("%d clusters registered into %d control planes", len(sources), len(controlPlanes)))
	}
	if equality.Semantic.DeepEqual(before.Status, rp.Status) {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, r.Client.Status().Patch(ctx, rp, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}

// conflict sets Ready=False Conflict with every problem, and says so in a
// Warning Event when the message is new.
func (r *Reconciler) conflict(rp, before *marinav1alpha1.RegistrationPolicy, problems []string) {
	slices.Sort(problems)
	msg := strings.Join(problems, "; ")
	old := meta.FindStatusCondition(before.Status.Conditions, marinav1alpha1.ConditionReady)
	if old == nil || old.Message != msg {
		r.Recorder.Eventf(rp, nil, corev1.EventTypeWarning, marinav1alpha1.ReasonConflict, "Register", "%s", msg)
	}
	setReady(rp, metav1.ConditionFalse, marinav1alpha1.ReasonConflict, msg)
}

func setReady(rp *marinav1alpha1.RegistrationPolicy, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&rp.Status.Conditions, metav1.Condition{
		Type: marinav1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg, ObservedGeneration: rp.Generation,
	})
}

// controlPlanes are the names of the selected ControlPlanes of the
// operator's data center, sorted, at most maxControlPlanes.
func (r *Reconciler) controlPlanes(ctx context.Context, rp *marinav1alpha1.RegistrationPolicy) ([]string, error) {
	sel, err := metav1.LabelSelectorAsSelector(&rp.Spec.ControlPlaneSelector)
	if err != nil {
		return nil, fmt.Errorf("spec.controlPlaneSelector: %w", err)
	}
	list := &marinav1alpha1.ControlPlaneList{}
	if err := r.Client.List(ctx, list, client.InNamespace(rp.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	var out []string
	for _, cp := range list.Items {
		if cp.Spec.DataCenter == r.DataCenter && cp.DeletionTimestamp.IsZero() {
			out = append(out, cp.Name)
		}
	}
	slices.Sort(out)
	if len(out) > maxControlPlanes {
		return out[:maxControlPlanes], fmt.Errorf("spec.controlPlaneSelector selects %d control planes; a member joins at most %d, the first %d by name", len(out), maxControlPlanes, maxControlPlanes)
	}
	return out, nil
}

// sources lists the clusters the policy selects; skipped says which it
// cannot register and why.
//
// evaluated says which kinds of source were read in full (clusterAPI,
// kubeconfigSecrets): only their MemberClusters may be pruned, so that a
// source that cannot be read now (Cluster API not served, a bad selector)
// never unjoins every member it registered.
func (r *Reconciler) sources(ctx context.Context, rp *marinav1alpha1.RegistrationPolicy) ([]source, map[string]bool, []string, error) {
	var out []source
	var skipped []string
	// A kind the policy no longer names selects nothing, for sure.
	evaluated := map[string]bool{
		sourceClusterAPI:        rp.Spec.Sources.ClusterAPI == nil,
		sourceKubeconfigSecrets: rp.Spec.Sources.KubeconfigSecrets == nil,
	}
	add := func(name, from string, spec marinav1alpha1.MemberClusterSpec) {
		if len(name) > 48 || len(validation.IsDNS1123Label(name)) > 0 {
			skipped = append(skipped, fmt.Sprintf("%s %s: its name is no DNS label of at most 48 characters, which the engine's Cluster needs", from, name))
			return
		}
		if slices.ContainsFunc(out, func(s source) bool { return s.name == name }) {
			skipped = append(skipped, fmt.Sprintf("%s %s: a cluster of that name comes from another source of this policy", from, name))
			return
		}
		out = append(out, source{name: name, spec: spec})
	}
	if src := rp.Spec.Sources.ClusterAPI; src != nil {
		if r.capi == nil {
			skipped = append(skipped, "spec.sources.clusterAPI: the management cluster serves no Cluster API Clusters")
		} else {
			sel, err := metav1.LabelSelectorAsSelector(&src.Selector)
			if err != nil {
				skipped = append(skipped, fmt.Sprintf("spec.sources.clusterAPI.selector: %v", err))
				sel = labels.Nothing()
			} else {
				evaluated[sourceClusterAPI] = true
			}
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(r.capi.GroupVersion().WithKind("ClusterList"))
			if err := r.Client.List(ctx, list, client.InNamespace(rp.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
				return nil, nil, nil, fmt.Errorf("list Cluster API Clusters: %w", err)
			}
			for _, c := range list.Items {
				if c.GetDeletionTimestamp() != nil {
					continue
				}
				add(c.GetName(), "Cluster API Cluster", marinav1alpha1.MemberClusterSpec{ClusterRef: &marinav1alpha1.ClusterReference{Name: c.GetName()}})
			}
		}
	}
	if src := rp.Spec.Sources.KubeconfigSecrets; src != nil {
		sel, err := metav1.LabelSelectorAsSelector(&src.Selector)
		if err != nil || sel.Empty() {
			skipped = append(skipped, "spec.sources.kubeconfigSecrets.selector selects nothing valid")
		} else {
			evaluated[sourceKubeconfigSecrets] = true
			// Names are all it needs: the metadata the manager watches,
			// never the Secrets' data (package secrets).
			list := secrets.List()
			if err := r.cache.List(ctx, list, client.InNamespace(rp.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
				return nil, nil, nil, fmt.Errorf("list kubeconfig Secrets: %w", err)
			}
			for _, s := range list.Items {
				if s.DeletionTimestamp != nil {
					continue
				}
				add(s.Name, "kubeconfig Secret", marinav1alpha1.MemberClusterSpec{KubeconfigSecretRef: &marinav1alpha1.SecretKeyReference{Name: s.Name, Key: src.Key}})
			}
		}
	}
	return out, evaluated, skipped, nil
}

const (
	sourceClusterAPI        = "clusterAPI"
	sourceKubeconfigSecrets = "kubeconfigSecrets"
)

// sourceKind is the kind of source a MemberCluster the policy made came
// from.
func sourceKind(mc *marinav1alpha1.MemberCluster) string {
	if mc.Spec.ClusterRef != nil {
		return sourceClusterAPI
	}
	return sourceKubeconfigSecrets
}

// ensureMember creates or updates the MemberCluster of one source; a
// MemberCluster of that name that the policy did not make is left alone
// and reported.
func (r *Reconciler) ensureMember(ctx context.Context, rp *marinav1alpha1.RegistrationPolicy, s source, controlPlanes []string, keepControlPlanes bool) (string, error) {
	mc := &marinav1alpha1.MemberCluster{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: rp.Namespace, Name: s.name}, mc)
	if err != nil && !apierrors.IsNotFound(err) {
		return "", err
	}
	exists := err == nil
	if origin := mc.Labels[marinav1alpha1.LabelOriginDataCenter]; exists && origin != "" {
		return fmt.Sprintf("cluster %s: a MemberCluster of that name is a replica from data center %s", s.name, origin), nil
	}
	if exists && !metav1.IsControlledBy(mc, rp) {
		if owner := mc.Labels[LabelRegistrationPolicy]; owner != "" && owner != rp.Name {
			return fmt.Sprintf("cluster %s: registered by RegistrationPolicy %s already", s.name, owner), nil
		}
		if metav1.GetControllerOf(mc) == nil && mc.Labels[LabelRegistrationPolicy] == "" {
			// A MemberCluster a person made: theirs to manage.
			return fmt.Sprintf("cluster %s: a MemberCluster of that name exists and no policy made it", s.name), nil
		}
	}
	if exists && !mc.DeletionTimestamp.IsZero() {
		return "", nil
	}
	before := mc.DeepCopy()
	if !exists {
		mc = &marinav1alpha1.MemberCluster{ObjectMeta: metav1.ObjectMeta{Namespace: rp.Namespace, Name: s.name}}
	}
	if mc.Labels == nil {
		mc.Labels = map[string]string{}
	}
	mc.Labels[LabelRegistrationPolicy] = rp.Name
	mc.Labels[marinav1alpha1.LabelManagedBy] = marinav1alpha1.ManagedByValue
	if err := controllerutil.SetControllerReference(rp, mc, r.Client.Scheme()); err != nil {
		// Another controller owns it: theirs.
		return fmt.Sprintf("cluster %s: its MemberCluster is controlled by another object: %v", s.name, err), nil
	}
	mc.Spec.KubeconfigSecretRef, mc.Spec.ClusterRef = s.spec.KubeconfigSecretRef, s.spec.ClusterRef
	mc.Spec.ClusterProperties = rp.Spec.Template
	if mc.Spec.SyncMode == "" {
		mc.Spec.SyncMode = marinav1alpha1.SyncModePush
	}
	// Manual approval: a person names the control planes; the policy
	// never takes them away.
	if rp.Spec.Approval != marinav1alpha1.ApprovalManual && !keepControlPlanes {
		mc.Spec.ControlPlanes = nil
		for _, name := range controlPlanes {
			mc.Spec.ControlPlanes = append(mc.Spec.ControlPlanes, marinav1alpha1.ControlPlaneReference{Name: name})
		}
	}
	if !exists {
		if err := r.Client.Create(ctx, mc); err != nil {
			return "", fmt.Errorf("create MemberCluster %s: %w", s.name, err)
		}
		r.Recorder.Eventf(rp, mc, corev1.EventTypeNormal, "Registered", "Register", "registered cluster %s as MemberCluster %s", s.name, s.name)
		return "", nil
	}
	if equality.Semantic.DeepEqual(before.Spec, mc.Spec) && equality.Semantic.DeepEqual(before.Labels, mc.Labels) &&
		equality.Semantic.DeepEqual(before.OwnerReferences, mc.OwnerReferences) {
		return "", nil
	}
	if err := r.Client.Patch(ctx, mc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return "", fmt.Errorf("update MemberCluster %s: %w", s.name, err)
	}
	return "", nil
}

// prune deletes the policy's MemberClusters whose source is gone or no
// longer selected; their finalizers unjoin them first.
func (r *Reconciler) prune(ctx context.Context, rp *marinav1alpha1.RegistrationPolicy, want, evaluated map[string]bool) error {
	list := &marinav1alpha1.MemberClusterList{}
	if err := r.Client.List(ctx, list, client.InNamespace(rp.Namespace), client.MatchingLabels{LabelRegistrationPolicy: rp.Name}); err != nil {
		return err
	}
	for i := range list.Items {
		mc := &list.Items[i]
		if want[mc.Name] || !evaluated[sourceKind(mc)] || !metav1.IsControlledBy(mc, rp) || !mc.DeletionTimestamp.IsZero() {
			continue
		}
		if err := r.Client.Delete(ctx, mc, client.Preconditions{UID: &mc.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete MemberCluster %s: %w", mc.Name, err)
		}
		r.Recorder.Eventf(rp, mc, corev1.EventTypeNormal, "Deregistered", "Register", "cluster %s is no longer selected or its source is gone: MemberCluster deleted, which unjoins it", mc.Name)
	}
	return nil
}

// reconcileReplica runs a RegistrationPolicy replicated from another data
// center. Its sources live there; what arrives here are the MemberClusters
// it made, replicated with their kubeconfigs and without control planes.
// The replica policy joins them to the control planes it selects in this
// data center: for Automatic approval at once, for Manual once a person
// approved the member in its origin. It never creates or deletes a
// MemberCluster: the origin's replication does.
func (r *Reconciler) reconcileReplica(ctx context.Context, rp *marinav1alpha1.RegistrationPolicy, before *marinav1alpha1.RegistrationPolicy,
	origin string, controlPlanes []string, keepControlPlanes bool, problems []string) error {
	list := &marinav1alpha1.MemberClusterList{}
	if err := r.Client.List(ctx, list, client.InNamespace(rp.Namespace),
		client.MatchingLabels{LabelRegistrationPolicy: rp.Name, marinav1alpha1.LabelOriginDataCenter: origin}); err != nil {
		return err
	}
	var refs []marinav1alpha1.ControlPlaneReference
	for _, name := range controlPlanes {
		refs = append(refs, marinav1alpha1.ControlPlaneReference{Name: name})
	}
	members := 0
	for i := range list.Items {
		mc := &list.Items[i]
		if !mc.DeletionTimestamp.IsZero() {
			continue
		}
		members++
		want := refs
		if rp.Spec.Approval == marinav1alpha1.ApprovalManual && mc.Annotations[marinav1alpha1.AnnotationApprovedInOrigin] != "true" {
			want = nil
		}
		if keepControlPlanes || equality.Semantic.DeepEqual(mc.Spec.ControlPlanes, want) {
			continue
		}
		patch := mc.DeepCopy()
		patch.Spec.ControlPlanes = want
		if err := r.Client.Patch(ctx, patch, client.MergeFromWithOptions(mc, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("set the control planes of replica MemberCluster %s: %w", mc.Name, err)
		}
	}
	rp.Status.MatchedClusters = int32(members)
	rp.Status.MatchedControlPlanes = int32(len(controlPlanes))
	switch {
	case len(problems) > 0:
		r.conflict(rp, before, problems)
	case len(controlPlanes) == 0:
		setReady(rp, metav1.ConditionFalse, marinav1alpha1.ReasonControlPlaneNotFound,
			fmt.Sprintf("a replica from data center %s: spec.controlPlaneSelector selects no ControlPlane of data center %s in namespace %s", origin, r.DataCenter, rp.Namespace))
	default:
		setReady(rp, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded,
			fmt.Sprintf("a replica from data center %s: %d of its clusters, replicated from there, join %d control planes here", origin, members, len(controlPlanes)))
	}
	if equality.Semantic.DeepEqual(before.Status, rp.Status) {
		return nil
	}
	return r.Client.Status().Patch(ctx, rp, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}
