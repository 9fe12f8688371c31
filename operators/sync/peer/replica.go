package peer

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

// Kinds that are replicated, by the name status and messages use.
const (
	kindPolicySet          = "PolicySet"
	kindRegistrationPolicy = "RegistrationPolicy"
	kindMemberCluster      = "MemberCluster"
)

// labelRegistrationPolicy is the register operator's: the policy a
// MemberCluster was made by (operators/register/policy).
const labelRegistrationPolicy = "marina.dev/registration-policy"

// capiKubeconfigKey is the key of a Cluster API <cluster>-kubeconfig Secret.
const capiKubeconfigKey = "value"

// replicaKubeconfigKey is the key of a member's kubeconfig in its replica
// Secret.
const replicaKubeconfigKey = "kubeconfig"

// ref names one replicated object in both management clusters.
type ref struct {
	kind string
	key  client.ObjectKey
}

func (r ref) String() string { return r.kind + " " + r.key.String() }

// replica is one object the peer should hold, with the data objects
// (ConfigMaps a PolicySet reads, a member's kubeconfig Secret) that go
// with it. Data objects are owned by their replica in the peer, so the
// peer's garbage collector removes them once the replica is gone: a
// member's kubeconfig stays until its unjoin there has finished.
type replica struct {
	ref
	obj  client.Object
	data []client.Object
}

// SecretName is the name of the Secret, next to a replica of MemberCluster
// member, that holds the member's kubeconfig in the peer.
func SecretName(member string) string { return member + "-kubeconfig-replica" }

// desired lists the replicas of everything that originates here: objects
// with no origin label, not being deleted. waiting are originals that
// cannot be replicated yet (a member whose kubeconfig is not there) and
// whose replicas, if any, stay as they are.
func (r *Reconciler) desired(ctx context.Context) (want []replica, waiting map[ref]string, err error) {
	waiting = map[ref]string{}
	policySets := &marinav1alpha1.PolicySetList{}
	if err := r.Client.List(ctx, policySets); err != nil {
		return nil, nil, err
	}
	for i := range policySets.Items {
		o := &policySets.Items[i]
		if !original(o) {
			continue
		}
		rep := &marinav1alpha1.PolicySet{ObjectMeta: r.replicaMeta(o, kindPolicySet), Spec: o.Spec}
		rp := replica{ref: ref{kindPolicySet, client.ObjectKeyFromObject(o)}, obj: rep}
		for _, s := range o.Spec.Sources {
			if s.ConfigMapRef == nil {
				continue
			}
			cm := &corev1.ConfigMap{}
			err := r.Client.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: s.ConfigMapRef.Name}, cm)
			if apierrors.IsNotFound(err) {
				// The PolicySet reports its missing source in both data
				// centers alike.
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			rp.data = append(rp.data, &corev1.ConfigMap{
				ObjectMeta: r.dataMeta(cm, fmt.Sprintf("ConfigMap %s/%s, which PolicySets read, in data center %s", cm.Namespace, cm.Name, r.DataCenter)),
				Data:       cm.Data, BinaryData: cm.BinaryData,
			})
		}
		want = append(want, rp)
	}

	policies := &marinav1alpha1.RegistrationPolicyList{}
	if err := r.Client.List(ctx, policies); err != nil {
		return nil, nil, err
	}
	for i := range policies.Items {
		o := &policies.Items[i]
		if original(o) {
			want = append(want, replica{ref: ref{kindRegistrationPolicy, client.ObjectKeyFromObject(o)},
				obj: &marinav1alpha1.RegistrationPolicy{ObjectMeta: r.replicaMeta(o, kindRegistrationPolicy), Spec: o.Spec}})
		}
	}

	members := &marinav1alpha1.MemberClusterList{}
	if err := r.Client.List(ctx, members); err != nil {
		return nil, nil, err
	}
	for i := range members.Items {
		o := &members.Items[i]
		if !original(o) {
			continue
		}
		id := ref{kindMemberCluster, client.ObjectKeyFromObject(o)}
		kubeconfig, why, err := r.memberKubeconfig(ctx, o)
		if err != nil {
			return nil, nil, err
		}
		if why != "" {
			waiting[id] = why
			continue
		}
		want = append(want, replica{ref: id, obj: r.memberReplica(o), data: []client.Object{&corev1.Secret{
			ObjectMeta: r.dataMeta(&metav1.ObjectMeta{Namespace: o.Namespace, Name: SecretName(o.Name)},
				"kubeconfig of "+r.origin(kindMemberCluster, o)),
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{replicaKubeconfigKey: kubeconfig},
		}}})
	}
	return want, waiting, nil
}

// original says whether o was authored here: not a replica, not going.
func original(o client.Object) bool {
	_, replica := o.GetLabels()[marinav1alpha1.LabelOriginDataCenter]
	return !replica && o.GetDeletionTimestamp().IsZero()
}

func (r *Reconciler) origin(kind string, o metav1.Object) string {
	return fmt.Sprintf("%s %s/%s in data center %s", kind, o.GetNamespace(), o.GetName(), r.DataCenter)
}

// replicaMeta is a replica's metadata: the original's labels and Marina's
// own annotations (an unjoin timeout, a rotation on demand mean the same
// there), plus where the original lives.
func (r *Reconciler) replicaMeta(o metav1.Object, kind string) metav1.ObjectMeta {
	labels := maps.Clone(o.GetLabels())
	if labels == nil {
		labels = map[string]string{}
	}
	labels[marinav1alpha1.LabelOriginDataCenter] = r.DataCenter
	annotations := map[string]string{marinav1alpha1.AnnotationOrigin: r.origin(kind, o)}
	for k, v := range o.GetAnnotations() {
		if strings.HasPrefix(k, "marina.dev/") && k != marinav1alpha1.AnnotationOrigin {
			annotations[k] = v
		}
	}
	return metav1.ObjectMeta{Namespace: o.GetNamespace(), Name: o.GetName(), Labels: labels, Annotations: annotations}
}

// dataMeta is the metadata of a ConfigMap or Secret that goes with a
// replica.
func (r *Reconciler) dataMeta(o metav1.Object, origin string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: o.GetNamespace(), Name: o.GetName(),
		Labels: map[string]string{
			marinav1alpha1.LabelOriginDataCenter: r.DataCenter,
			marinav1alpha1.LabelManagedBy:        marinav1alpha1.ManagedByValue,
		},
		Annotations: map[string]string{marinav1alpha1.AnnotationOrigin: origin}}
}

// memberReplica is the replica of a MemberCluster. Its credentials are the
// kubeconfig Secret next to it, whatever the original reads them from. A
// member a RegistrationPolicy made carries no control planes: the peer's
// register operator joins it to those the replicated policy selects there.
// A member a person made names its control planes, and joins those of that
// name in the peer.
func (r *Reconciler) memberReplica(o *marinav1alpha1.MemberCluster) *marinav1alpha1.MemberCluster {
	rep := &marinav1alpha1.MemberCluster{ObjectMeta: r.replicaMeta(o, kindMemberCluster), Spec: *o.Spec.DeepCopy()}
	rep.Spec.ClusterRef = nil
	rep.Spec.KubeconfigSecretRef = &marinav1alpha1.SecretKeyReference{Name: SecretName(o.Name), Key: replicaKubeconfigKey}
	if policyMade(o) {
		if len(o.Spec.ControlPlanes) > 0 {
			rep.Annotations[marinav1alpha1.AnnotationApprovedInOrigin] = "true"
		}
		rep.Spec.ControlPlanes = nil
	} else {
		// Only a policy's own members carry its label in the peer, where
		// the replicated policy fills their control planes.
		delete(rep.Labels, labelRegistrationPolicy)
	}
	return rep
}

// replicaOfPolicyMember says whether a MemberCluster replica is of a member
// a RegistrationPolicy made: the peer's register operator owns its control
// planes.
func replicaOfPolicyMember(o client.Object) bool {
	_, ok := o.GetLabels()[labelRegistrationPolicy]
	return ok
}

func policyMade(o *marinav1alpha1.MemberCluster) bool {
	c := metav1.GetControllerOf(o)
	return o.Labels[labelRegistrationPolicy] != "" && c != nil && c.Kind == kindRegistrationPolicy
}

// memberKubeconfig reads the kubeconfig the register operator joins the
// member with, or says why there is none yet.
func (r *Reconciler) memberKubeconfig(ctx context.Context, o *marinav1alpha1.MemberCluster) ([]byte, string, error) {
	name, key := "", ""
	switch {
	case o.Spec.KubeconfigSecretRef != nil:
		name, key = o.Spec.KubeconfigSecretRef.Name, o.Spec.KubeconfigSecretRef.KeyOr("kubeconfig")
	case o.Spec.ClusterRef != nil:
		name, key = o.Spec.ClusterRef.Name+"-kubeconfig", capiKubeconfigKey
	default:
		return nil, "it names no credentials", nil
	}
	s := &corev1.Secret{}
	err := r.secrets.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: name}, s)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Sprintf("its kubeconfig Secret %s does not exist yet", name), nil
	case err != nil:
		return nil, "", err
	case len(s.Data[key]) == 0:
		return nil, fmt.Sprintf("its kubeconfig Secret %s has no key %s yet", name, key), nil
	}
	return s.Data[key], "", nil
}

// same says whether got, the peer's replica, holds exactly what want
// says: labels, Marina's annotations and spec. Fields the peer's own
// operators own (a policy member's control planes, finalizers, status) are
// theirs.
func same(want, got client.Object) bool {
	if !maps.Equal(want.GetLabels(), got.GetLabels()) || !maps.Equal(marinaAnnotations(want), marinaAnnotations(got)) {
		return false
	}
	switch w := want.(type) {
	case *marinav1alpha1.PolicySet:
		return equality.Semantic.DeepEqual(w.Spec, got.(*marinav1alpha1.PolicySet).Spec)
	case *marinav1alpha1.RegistrationPolicy:
		return equality.Semantic.DeepEqual(w.Spec, got.(*marinav1alpha1.RegistrationPolicy).Spec)
	case *marinav1alpha1.MemberCluster:
		g := got.(*marinav1alpha1.MemberCluster).Spec
		if replicaOfPolicyMember(w) {
			g.ControlPlanes = nil
		}
		return equality.Semantic.DeepEqual(w.Spec, g)
	}
	return false
}

func marinaAnnotations(o client.Object) map[string]string {
	out := map[string]string{}
	for k, v := range o.GetAnnotations() {
		if strings.HasPrefix(k, "marina.dev/") {
			out[k] = v
		}
	}
	return out
}

// replaceInto is live, the peer's replica, with want's labels, Marina's
// annotations and spec: what an Update writes. Its finalizers, status and,
// for a policy's member, control planes stay the peer's.
func replaceInto(live, want client.Object) client.Object {
	out := live.DeepCopyObject().(client.Object)
	out.SetLabels(maps.Clone(want.GetLabels()))
	annotations := map[string]string{}
	for k, v := range live.GetAnnotations() {
		if !strings.HasPrefix(k, "marina.dev/") {
			annotations[k] = v
		}
	}
	maps.Copy(annotations, want.GetAnnotations())
	out.SetAnnotations(annotations)
	switch w := want.(type) {
	case *marinav1alpha1.PolicySet:
		out.(*marinav1alpha1.PolicySet).Spec = *w.Spec.DeepCopy()
	case *marinav1alpha1.RegistrationPolicy:
		out.(*marinav1alpha1.RegistrationPolicy).Spec = *w.Spec.DeepCopy()
	case *marinav1alpha1.MemberCluster:
		o := out.(*marinav1alpha1.MemberCluster)
		keep := o.Spec.ControlPlanes
		o.Spec = *w.Spec.DeepCopy()
		if replicaOfPolicyMember(w) {
			o.Spec.ControlPlanes = keep
		}
	}
	return out
}

// originalExists reads, past the cache, whether the original of a replica
// is still here.
func (r *Reconciler) originalExists(ctx context.Context, id ref) (bool, error) {
	var o client.Object
	switch id.kind {
	case kindPolicySet:
		o = &marinav1alpha1.PolicySet{}
	case kindRegistrationPolicy:
		o = &marinav1alpha1.RegistrationPolicy{}
	default:
		o = &marinav1alpha1.MemberCluster{}
	}
	err := r.APIReader.Get(ctx, id.key, o)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return original(o), nil
}

// dataHash identifies a data object's content and owners, for the memo.
func dataHash(o client.Object, owners []types.UID) [32]byte {
	h := sha256.New()
	switch d := o.(type) {
	case *corev1.Secret:
		for _, k := range slices.Sorted(maps.Keys(d.Data)) {
			fmt.Fprintf(h, "%s=%x;", k, sha256.Sum256(d.Data[k]))
		}
	case *corev1.ConfigMap:
		for _, k := range slices.Sorted(maps.Keys(d.Data)) {
			fmt.Fprintf(h, "%s=%x;", k, sha256.Sum256([]byte(d.Data[k])))
		}
		for _, k := range slices.Sorted(maps.Keys(d.BinaryData)) {
			fmt.Fprintf(h, "b%s=%x;", k, sha256.Sum256(d.BinaryData[k]))
		}
	}
	for _, u := range owners {
		fmt.Fprintf(h, "owner=%s;", u)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}
