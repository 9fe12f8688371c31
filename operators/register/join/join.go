// Package join joins a member cluster to a federation control plane in
// Karmada's push mode, and unjoins it, leaving both sides as Karmada's own
// `karmadactl join` and `karmadactl unjoin` do, so that the engine's
// controllers work with what Marina made.
//
// What a join makes (the names are karmadactl's):
//
//   - in the member: the namespace karmada-cluster; the ServiceAccount
//     karmada-<cluster> bound to the ClusterRole
//     karmada-controller-manager:karmada-<cluster> (all resources, as
//     karmadactl grants: the engine's controllers apply any workload); the
//     ServiceAccount karmada-impersonator, whose rights the engine's
//     unified-auth controller grants later for the users allowed to proxy;
//     and a token Secret for each of the two;
//   - in the control plane: the namespace karmada-cluster, the Secrets
//     <cluster> (caBundle, token) and <cluster>-impersonator (token), owned
//     by the cluster.karmada.io/v1alpha1 Cluster <cluster>.
//
// One difference from karmadactl: a member may be joined to several control
// planes (its own data center's and a standby's), so each control plane
// gets token Secrets of its own (karmada-<cluster>-<control plane ID> and
// karmada-impersonator-<control plane ID>) and an unjoin revokes only its
// tokens; the ServiceAccounts and RBAC, which karmadactl names by cluster
// alone, are shared and go with the last Marina join of that member.
//
// Everything Marina creates carries app.kubernetes.io/managed-by=marina and
// marina.dev/member-cluster=<cluster>; an unjoin deletes only objects with
// both, so an object a person or karmadactl made is used but never deleted.
package join

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

const (
	// Namespace holds the join's credentials on both sides (karmadactl's
	// default --cluster-namespace).
	Namespace = "karmada-cluster"
	// ImpersonatorServiceAccount is the member's ServiceAccount that the
	// engine impersonates users with; the engine's unified-auth controller
	// binds rights to exactly this name.
	ImpersonatorServiceAccount = "karmada-impersonator"
	// FieldManager owns what the register operator applies.
	FieldManager = "marina-register"

	// LabelControlPlaneID marks a member's token Secret with the control
	// plane that holds it (ControlPlaneID).
	LabelControlPlaneID = "marina.dev/control-plane-id"
	// LabelTokenFor says whose token a Secret holds: controllers or
	// impersonator.
	LabelTokenFor = "marina.dev/token-for"

	// labelKarmadaSystem is what karmadactl puts on everything it creates.
	labelKarmadaSystem = "karmada.io/system"

	tokenForControllers  = "controllers"
	tokenForImpersonator = "impersonator"

	// The keys of the control plane's credential Secrets, as the engine
	// reads them (clusterv1alpha1.SecretTokenKey, SecretCADataKey).
	secretTokenKey  = "token"
	secretCADataKey = "caBundle"
)

// ClusterGVK is the engine's Cluster kind.
var ClusterGVK = schema.GroupVersionKind{Group: "cluster.karmada.io", Version: "v1alpha1", Kind: "Cluster"}

// ServiceAccountName is the member's ServiceAccount for the engine's
// controllers (Karmada's names.GenerateServiceAccountName).
func ServiceAccountName(cluster string) string { return "karmada-" + cluster }

// ClusterRoleName is the ClusterRole and ClusterRoleBinding of that
// ServiceAccount (Karmada's names.GenerateRoleName).
func ClusterRoleName(cluster string) string {
	return "karmada-controller-manager:" + ServiceAccountName(cluster)
}

// ImpersonatorSecretName is the control plane's Secret with the
// impersonator's token (Karmada's names.GenerateImpersonationSecretName).
func ImpersonatorSecretName(cluster string) string { return cluster + "-impersonator" }

// ControlPlaneID names a control plane on the member's side: short enough
// for a label and an object name, and the same for the same ControlPlane
// whoever computes it, so that an unjoin finds the tokens of a control plane
// that no longer exists.
func ControlPlaneID(dataCenter, namespace, name string) string {
	sum := sha256.Sum256([]byte(dataCenter + "/" + namespace + "/" + name))
	return hex.EncodeToString(sum[:])[:10]
}

// Scheme holds the kinds the join reads and writes on both sides.
var Scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, rbacv1.AddToScheme, coordinationv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// RESTMapper maps the kinds the join and the member probe use to their
// resources, without discovery: the operator holds a client for each of
// thousands of members and control planes, and a discovery cache each
// would cost it about a megabyte per member. A kind missing here fails
// with "no matches for kind" in the join tests.
var RESTMapper = func() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	for _, k := range []string{"Namespace", "Node"} {
		m.Add(corev1.SchemeGroupVersion.WithKind(k), meta.RESTScopeRoot)
	}
	for _, k := range []string{"Secret", "ServiceAccount", "ConfigMap", "Pod"} {
		m.Add(corev1.SchemeGroupVersion.WithKind(k), meta.RESTScopeNamespace)
	}
	for _, k := range []string{"ClusterRole", "ClusterRoleBinding"} {
		m.Add(rbacv1.SchemeGroupVersion.WithKind(k), meta.RESTScopeRoot)
	}
	for _, k := range []string{"Role", "RoleBinding"} {
		m.Add(rbacv1.SchemeGroupVersion.WithKind(k), meta.RESTScopeNamespace)
	}
	m.Add(ClusterGVK, meta.RESTScopeRoot)
	// The member's dispatch lease, and the engine's propagation policies
	// a standby control plane holds back (package dispatch).
	m.Add(coordinationv1.SchemeGroupVersion.WithKind("Lease"), meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Group: "policy.karmada.io", Version: "v1alpha1", Kind: "PropagationPolicy"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Group: "policy.karmada.io", Version: "v1alpha1", Kind: "ClusterPropagationPolicy"}, meta.RESTScopeRoot)
	return m
}()

// Pair is one member cluster and one control plane.
type Pair struct {
	// Cluster is the member's name in the control plane, the MemberCluster's.
	Cluster string
	// ControlPlaneID is ControlPlaneID of the control plane.
	ControlPlaneID string
	// Member reaches the member's API server as an administrator;
	// MemberConfig is what it was made from (its endpoint becomes the
	// Cluster's apiEndpoint). Nil when the member cannot be reached: an
	// unjoin then cleans the control plane only.
	Member       client.Client
	MemberConfig *rest.Config
	// Federation reaches the control plane's API server as an
	// administrator; nil when the control plane is gone.
	Federation client.Client
	// Properties are stamped on the engine's Cluster.
	Properties marinav1alpha1.ClusterProperties
	// RotateAfter is the age at which the control plane's tokens are
	// replaced by new ones; never when zero.
	RotateAfter time.Duration
	// RotateBefore replaces tokens made before it, whatever their age: a
	// rotation a person asks for.
	RotateBefore time.Time
	// RevokeAfter is how long a replaced token keeps working after the
	// control plane holds its successor.
	RevokeAfter time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// ConflictError says an object the join must own exists and someone else
// made it, or the member is joined already under another name. Nothing is
// changed until a person resolves it.
type ConflictError struct{ msg string }

func (e *ConflictError) Error() string { return e.msg }

// IsConflict says whether err is a ConflictError.
func IsConflict(err error) bool {
	var c *ConflictError
	return errors.As(err, &c)
}

// Result is where a join stands.
type Result struct {
	// ClusterID is the member's kube-system namespace UID, the engine's
	// cluster ID.
	ClusterID string
	// Waiting is set while the member's token controller has not filled a
	// token Secret yet: the join is not done; try again shortly.
	Waiting string
	// Rotating is set while a rotated token waits for the token
	// controller: the join works with the current one; look again
	// shortly to hand the new one over.
	Rotating bool
}

// Join makes, or completes, what the member and the control plane need. It
// is idempotent; a pass where everything is in place changes nothing.
func Join(ctx context.Context, p Pair) (Result, error) {
	if p.Member == nil || p.Federation == nil || p.MemberConfig == nil {
		return Result{}, errors.New("join needs clients of both the member and the control plane")
	}
	id, err := ClusterID(ctx, p.Member)
	if err != nil {
		return Result{}, fmt.Errorf("read the member's cluster ID (namespace kube-system): %w", err)
	}
	res := Result{ClusterID: id}
	if err := p.checkFederation(ctx, id); err != nil {
		return res, err
	}
	tokens, waiting, err := p.memberSide(ctx)
	if err != nil || waiting != "" {
		res.Waiting = waiting
		return res, err
	}
	for _, t := range tokens {
		res.Rotating = res.Rotating || t.newerPending
	}
	if err := p.federationSide(ctx, id, tokens); err != nil {
		return res, err
	}
	return res, p.retireTokens(ctx, tokens)
}

// ClusterID is the engine's ID of a cluster: its kube-system namespace UID
// (Karmada's util.ObtainClusterID).
func ClusterID(ctx context.Context, c client.Reader) (string, error) {
	ns := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: metav1.NamespaceSystem}, ns); err != nil {
		return "", err
	}
	return string(ns.UID), nil
}

// Labels are what marks an object as a join's of this member.
func (p Pair) Labels() map[string]string { return p.labels() }

func (p Pair) labels() map[string]string {
	return map[string]string{
		marinav1alpha1.LabelManagedBy:     marinav1alpha1.ManagedByValue,
		marinav1alpha1.LabelMemberCluster: p.Cluster,
		labelKarmadaSystem:                "true",
	}
}

// ours says whether an object was made by a Marina join of this member.
func (p Pair) ours(o metav1.Object) bool {
	l := o.GetLabels()
	return l[marinav1alpha1.LabelManagedBy] == marinav1alpha1.ManagedByValue && l[marinav1alpha1.LabelMemberCluster] == p.Cluster
}

// checkFederation refuses to take over a Cluster someone else made, and to
// join the same member a second time under another name (the engine's
// join refuses that too: one cluster ID, one Cluster).
//
// Once this member's own Cluster carries its ID, the list of every Cluster
// is skipped: the engine refuses a second Cluster with an ID it holds
// already, so none can have appeared since, and a control plane with
// thousands of members is not listed whole on every pass.
func (p Pair) checkFederation(ctx context.Context, id string) error {
	own := &unstructured.Unstructured{}
	own.SetGroupVersionKind(ClusterGVK)
	switch err := p.Federation.Get(ctx, client.ObjectKey{Name: p.Cluster}, own); {
	case err == nil:
		if !p.ours(own) {
			return &ConflictError{fmt.Sprintf("the control plane has a Cluster %s that Marina did not make (joined by hand or by another tool): unjoin it there, or give this MemberCluster another name", p.Cluster)}
		}
		if got, _, _ := unstructured.NestedString(own.Object, "spec", "id"); got == id {
			return nil
		}
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("read the control plane's Cluster %s: %w", p.Cluster, err)
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(ClusterGVK.GroupVersion().WithKind("ClusterList"))
	if err := p.Federation.List(ctx, list); err != nil {
		return fmt.Errorf("list the control plane's Clusters: %w", err)
	}
	for i := range list.Items {
		c := &list.Items[i]
		if c.GetName() == p.Cluster {
			if !p.ours(c) {
				return &ConflictError{fmt.Sprintf("the control plane has a Cluster %s that Marina did not make (joined by hand or by another tool): unjoin it there, or give this MemberCluster another name", p.Cluster)}
			}
			continue
		}
		if other, _, _ := unstructured.NestedString(c.Object, "spec", "id"); other == id {
			return &ConflictError{fmt.Sprintf("this cluster (kube-system UID %s) is joined to the control plane already as Cluster %s: one cluster joins a control plane once", id, c.GetName())}
		}
	}
	return nil
}

// token is the member token Secret a control plane is to hold.
type token struct {
	// secret is its name; inUseSince its AnnotationInUseSince.
	secret, inUseSince string
	token, ca          []byte
	// older are this control plane's older token Secrets for the same
	// ServiceAccount, to revoke once the control plane holds this one.
	older []corev1.Secret
	// newerPending says a newer token Secret waits to be filled.
	newerPending bool
}

// memberSide makes the member's namespace, ServiceAccounts, RBAC and this
// control plane's token Secrets, and returns the tokens once the member's
// token controller has filled them.
func (p Pair) memberSide(ctx context.Context) (map[string]token, string, error) {
	c := p.Member
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace, Labels: p.labels()}}
	if err := createIfMissing(ctx, c, ns); err != nil {
		return nil, "", fmt.Errorf("member: namespace %s: %w", Namespace, err)
	}
	err := c.Get(ctx, client.ObjectKeyFromObject(ns), ns)
	if apierrors.IsNotFound(err) {
		// A last unjoin's deletion of it finished between the create,
		// which found it still there, and this read: make it next time.
		return nil, fmt.Sprintf("waiting to make the member's namespace %s again, just deleted", Namespace), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("member: namespace %s: %w", Namespace, err)
	}
	if ns.DeletionTimestamp != nil {
		// A last unjoin deleted it a moment ago.
		return nil, fmt.Sprintf("waiting for the member's namespace %s, being deleted, to be gone", Namespace), nil
	}
	sa := ServiceAccountName(p.Cluster)
	for _, name := range []string{sa, ImpersonatorServiceAccount} {
		obj := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name, Labels: p.labels()}}
		if err := createIfMissing(ctx, c, obj); err != nil {
			return nil, "", fmt.Errorf("member: ServiceAccount %s/%s: %w", Namespace, name, err)
		}
	}
	if err := p.ensureRBAC(ctx); err != nil {
		return nil, "", err
	}
	tokens := map[string]token{}
	var waiting []string
	for _, t := range []struct{ sa, of string }{
		{sa, tokenForControllers},
		{ImpersonatorServiceAccount, tokenForImpersonator},
	} {
		tok, pending, err := p.currentToken(ctx, t.sa, t.of)
		if err != nil {
			return nil, "", err
		}
		if tok == nil {
			waiting = append(waiting, Namespace+"/"+pending)
			continue
		}
		tokens[t.of] = *tok
	}
	if len(waiting) > 0 {
		return nil, fmt.Sprintf("waiting for the member's token controller to fill the token Secrets %s (the member's kube-controller-manager must run its serviceaccount-token controller)", strings.Join(waiting, ", ")), nil
	}
	return tokens, "", nil
}

// AnnotationInUseSince is set on a member's token Secret when the control
// plane first holds its token; older tokens are revoked RevokeAfter later.
const AnnotationInUseSince = "marina.dev/in-use-since"

// annotationRotatedFor marks a token Secret made for a rotation asked for
// (Pair.RotateBefore), so that the same request never rotates twice.
const annotationRotatedFor = "marina.dev/rotated-for"

// currentToken returns the token the control plane is to hold: the newest
// filled token Secret of this control plane and ServiceAccount. It makes
// the first one, and a new one once the newest is older than RotateAfter;
// until the new one is filled, the one before stays in use, so the control
// plane never holds a token that does not work yet. pending names a
// Secret still waiting for its token when there is none to use.
func (p Pair) currentToken(ctx context.Context, sa, of string) (*token, string, error) {
	c := p.Member
	l := p.labels()
	l[LabelControlPlaneID] = p.ControlPlaneID
	l[LabelTokenFor] = of
	list := &corev1.SecretList{}
	if err := c.List(ctx, list, client.InNamespace(Namespace), client.MatchingLabels(l)); err != nil {
		return nil, "", fmt.Errorf("member: list token Secrets: %w", err)
	}
	secrets := tokenSecretsByAge(list.Items)
	now := p.now()
	asked := ""
	if !p.RotateBefore.IsZero() {
		asked = p.RotateBefore.UTC().Format(time.RFC3339)
	}
	due := func(newest *corev1.Secret) bool {
		if p.RotateAfter > 0 && now.Sub(newest.CreationTimestamp.Time) >= p.RotateAfter {
			return true
		}
		// Made for this very request already: a member whose clock is
		// behind would otherwise date it before the time asked for.
		return newest.CreationTimestamp.Before(&metav1.Time{Time: p.RotateBefore}) && newest.Annotations[annotationRotatedFor] != asked
	}
	if len(secrets) == 0 || due(&secrets[len(secrets)-1]) {
		name := sa + "-" + p.ControlPlaneID
		if len(secrets) > 0 {
			name = fmt.Sprintf("%s-%d", name, now.Unix())
		}
		sec := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: Namespace, Name: name, Labels: l,
				Annotations: map[string]string{corev1.ServiceAccountNameKey: sa},
			},
			Type: corev1.SecretTypeServiceAccountToken,
		}
		if asked != "" {
			sec.Annotations[annotationRotatedFor] = asked
		}
		if err := createIfMissing(ctx, c, sec); err != nil {
			return nil, "", fmt.Errorf("member: token Secret %s/%s: %w", Namespace, name, err)
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(sec), sec); err != nil {
			return nil, "", fmt.Errorf("member: token Secret %s/%s: %w", Namespace, name, err)
		}
		// Made in this same second already: it is the newest.
		if !slices.ContainsFunc(secrets, func(s corev1.Secret) bool { return s.UID == sec.UID }) {
			secrets = append(secrets, *sec)
		}
	}
	for i := len(secrets) - 1; i >= 0; i-- {
		sec := &secrets[i]
		if len(sec.Data[corev1.ServiceAccountTokenKey]) == 0 {
			continue
		}
		return &token{
			secret: sec.Name, token: sec.Data[corev1.ServiceAccountTokenKey], ca: sec.Data[corev1.ServiceAccountRootCAKey],
			inUseSince: sec.Annotations[AnnotationInUseSince], older: secrets[:i],
			newerPending: i < len(secrets)-1,
		}, "", nil
	}
	return nil, secrets[len(secrets)-1].Name, nil
}

// tokenSecretsByAge sorts token Secrets oldest first.
func tokenSecretsByAge(items []corev1.Secret) []corev1.Secret {
	out := slices.Clone(items)
	slices.SortFunc(out, func(a, b corev1.Secret) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

func (p Pair) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// retireTokens runs once the control plane holds the current tokens: it
// marks when they came into use, and deletes the older token Secrets of
// this control plane (revoking them) RevokeAfter after that, so that a
// client that read the old token a moment ago has time to read the new.
func (p Pair) retireTokens(ctx context.Context, tokens map[string]token) error {
	c := p.Member
	now := p.now()
	for _, of := range slices.Sorted(maps.Keys(tokens)) {
		t := tokens[of]
		since := now
		if t.inUseSince == "" {
			patch := client.MergeFrom(&corev1.Secret{})
			sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: t.secret,
				Annotations: map[string]string{AnnotationInUseSince: now.UTC().Format(time.RFC3339)}}}
			if err := c.Patch(ctx, sec, patch); err != nil {
				return fmt.Errorf("member: mark token Secret %s/%s in use: %w", Namespace, t.secret, err)
			}
		} else if parsed, err := time.Parse(time.RFC3339, t.inUseSince); err == nil {
			since = parsed
		}
		if now.Sub(since) < p.RevokeAfter {
			continue
		}
		for i := range t.older {
			old := &t.older[i]
			if err := c.Delete(ctx, old, client.Preconditions{UID: &old.UID}); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("member: revoke token Secret %s/%s: %w", Namespace, old.Name, err)
			}
		}
	}
	return nil
}

// clusterRules are karmadactl's: the engine's controllers create, read and
// delete any workload in the member, and read its health endpoints.
var clusterRules = []rbacv1.PolicyRule{
	{Verbs: []string{rbacv1.VerbAll}, APIGroups: []string{rbacv1.APIGroupAll}, Resources: []string{rbacv1.ResourceAll}},
	{Verbs: []string{"get"}, NonResourceURLs: []string{rbacv1.NonResourceAll}},
}

func (p Pair) ensureRBAC(ctx context.Context) error {
	c := p.Member
	name := ClusterRoleName(p.Cluster)
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: p.labels()}, Rules: clusterRules}
	if err := createIfMissing(ctx, c, role); err != nil {
		return fmt.Errorf("member: ClusterRole %s: %w", name, err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: p.labels()},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: Namespace, Name: ServiceAccountName(p.Cluster)}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
	}
	if err := createIfMissing(ctx, c, binding); err != nil {
		return fmt.Errorf("member: ClusterRoleBinding %s: %w", name, err)
	}
	// Marina's own role and binding are kept as made: a hand edit that
	// took rights away would break the engine without a word.
	if err := c.Get(ctx, client.ObjectKeyFromObject(role), role); err != nil {
		return fmt.Errorf("member: ClusterRole %s: %w", name, err)
	}
	if p.ours(role) && !slicesEqualRules(role.Rules, clusterRules) {
		role.Rules = clusterRules
		if err := c.Update(ctx, role); err != nil {
			return fmt.Errorf("member: restore ClusterRole %s: %w", name, err)
		}
	}
	return nil
}

func slicesEqualRules(a, b []rbacv1.PolicyRule) bool {
	return slices.EqualFunc(a, b, func(x, y rbacv1.PolicyRule) bool {
		return slices.Equal(x.Verbs, y.Verbs) && slices.Equal(x.APIGroups, y.APIGroups) &&
			slices.Equal(x.Resources, y.Resources) && slices.Equal(x.NonResourceURLs, y.NonResourceURLs) &&
			slices.Equal(x.ResourceNames, y.ResourceNames)
	})
}

// createIfMissing creates obj unless an object of its name exists; an
// existing one is used as it is, whoever made it.
func createIfMissing(ctx context.Context, c client.Client, obj client.Object) error {
	if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// federationSide writes the credential Secrets and the Cluster into the
// control plane, then makes the Cluster own the Secrets as karmadactl does,
// so that the engine deletes them with it.
func (p Pair) federationSide(ctx context.Context, id string, tokens map[string]token) error {
	c := p.Federation
	// The namespace is read first: on a Marina control plane the
	// controlplane operator makes it, and the register operator's identity
	// there may read it but not create namespaces.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace, Labels: map[string]string{labelKarmadaSystem: "true"}}}
	switch err := c.Get(ctx, client.ObjectKeyFromObject(ns), &corev1.Namespace{}); {
	case apierrors.IsNotFound(err):
		if err := createIfMissing(ctx, c, ns); err != nil {
			return fmt.Errorf("control plane: namespace %s is missing and could not be made: %w", Namespace, err)
		}
	case err != nil:
		return fmt.Errorf("control plane: namespace %s: %w", Namespace, err)
	}
	// The CA the member's kubeconfig trusts is the one that verifies the
	// endpoint the Cluster names; the token Secret's ca.crt (karmadactl's
	// choice) is the member's cluster CA, which differs where a load
	// balancer serves the endpoint.
	ca := p.MemberConfig.CAData
	if len(ca) == 0 {
		ca = tokens[tokenForControllers].ca
	}
	secrets := map[string]map[string][]byte{
		p.Cluster:                         {secretCADataKey: ca, secretTokenKey: tokens[tokenForControllers].token},
		ImpersonatorSecretName(p.Cluster): {secretTokenKey: tokens[tokenForImpersonator].token},
	}
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		if err := p.applySecret(ctx, name, secrets[name], nil); err != nil {
			return err
		}
	}
	cluster, err := p.applyCluster(ctx, id)
	if err != nil {
		return err
	}
	owner := metav1.NewControllerRef(cluster, ClusterGVK)
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		if err := p.applySecret(ctx, name, secrets[name], owner); err != nil {
			return err
		}
	}
	return nil
}

// applySecret writes a credential Secret unless it is as wanted already.
func (p Pair) applySecret(ctx context.Context, name string, data map[string][]byte, owner *metav1.OwnerReference) error {
	c := p.Federation
	live := &corev1.Secret{}
	err := c.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: name}, live)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("control plane: Secret %s/%s: %w", Namespace, name, err)
	case !p.ours(live):
		return &ConflictError{fmt.Sprintf("the control plane has a Secret %s/%s that Marina did not make: remove it, or give this MemberCluster another name", Namespace, name)}
	default:
		hasOwner := owner == nil || slices.ContainsFunc(live.OwnerReferences, func(o metav1.OwnerReference) bool { return o.UID == owner.UID })
		if hasOwner && maps.EqualFunc(live.Data, data, func(a, b []byte) bool { return string(a) == string(b) }) {
			return nil
		}
	}
	sec := corev1ac.Secret(name, Namespace).
		WithLabels(p.labels()).
		WithType(corev1.SecretTypeOpaque).
		WithData(data)
	if owner != nil {
		sec.WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(owner.APIVersion).WithKind(owner.Kind).WithName(owner.Name).WithUID(owner.UID).
			WithController(true).WithBlockOwnerDeletion(true))
	}
	if err := c.Apply(ctx, sec, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("control plane: apply Secret %s/%s: %w", Namespace, name, err)
	}
	return nil
}

// annotationTaints lists the taint keys Marina set on a Cluster, so that a
// taint removed from the spec is removed again while the engine's own
// taints (cluster.karmada.io/not-ready and the like) are kept: the list is
// one field, which whoever writes it replaces whole.
const annotationTaints = "marina.dev/taints"

// annotationLabels lists the label keys of spec.clusterLabels Marina set
// on a Cluster: a key removed from the spec changes it, so the apply that
// removes the label runs.
const annotationLabels = "marina.dev/cluster-labels"

// applyCluster writes the engine's Cluster unless it is as wanted already.
func (p Pair) applyCluster(ctx context.Context, id string) (*unstructured.Unstructured, error) {
	c := p.Federation
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(ClusterGVK)
	err := c.Get(ctx, client.ObjectKey{Name: p.Cluster}, live)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("control plane: Cluster %s: %w", p.Cluster, err)
	}
	exists := err == nil
	if exists && !p.ours(live) {
		return nil, &ConflictError{fmt.Sprintf("the control plane has a Cluster %s that Marina did not make: unjoin it there, or give this MemberCluster another name", p.Cluster)}
	}

	want := p.desiredCluster(id, live, exists)
	if exists && clusterUpToDate(live, want) {
		return live, nil
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(want), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return nil, fmt.Errorf("control plane: apply Cluster %s: %w", p.Cluster, err)
	}
	// The owner references of the Secrets need the Cluster's UID.
	if err := c.Get(ctx, client.ObjectKey{Name: p.Cluster}, live); err != nil {
		return nil, fmt.Errorf("control plane: Cluster %s: %w", p.Cluster, err)
	}
	return live, nil
}

// desiredCluster is the Cluster as karmadactl join writes it, with the
// member's properties.
func (p Pair) desiredCluster(id string, live *unstructured.Unstructured, exists bool) *unstructured.Unstructured {
	props := p.Properties
	labels := p.labels()
	maps.Copy(labels, props.ClusterLabels)
	// Marina's labels win over a user's label of the same key: unjoin finds
	// the Cluster by them.
	maps.Copy(labels, p.labels())

	spec := map[string]any{
		"syncMode":    string(marinav1alpha1.SyncModePush),
		"apiEndpoint": p.MemberConfig.Host,
		"id":          id,
		"secretRef":   map[string]any{"namespace": Namespace, "name": p.Cluster},
		"impersonatorSecretRef": map[string]any{
			"namespace": Namespace, "name": ImpersonatorSecretName(p.Cluster),
		},
	}
	if p.MemberConfig.Insecure {
		spec["insecureSkipTLSVerification"] = true
	}
	if p.MemberConfig.Proxy != nil {
		if u, err := p.MemberConfig.Proxy(nil); err == nil && u != nil {
			spec["proxyURL"] = u.String()
		}
	}
	if props.Provider != "" {
		spec["provider"] = props.Provider
	}
	if props.Region != "" {
		spec["region"] = props.Region
	}
	if len(props.Zones) > 0 {
		zones := make([]any, 0, len(props.Zones))
		for _, z := range props.Zones {
			zones = append(zones, z)
		}
		spec["zones"] = zones
	}

	var mine []string
	var taints []any
	var liveTaints []any
	if exists {
		liveTaints, _, _ = unstructured.NestedSlice(live.Object, "spec", "taints")
	}
	for _, t := range props.Taints {
		mine = append(mine, t.Key)
		m := map[string]any{"key": t.Key, "effect": string(t.Effect)}
		if t.Value != "" {
			m["value"] = t.Value
		}
		// The engine stamps timeAdded on NoExecute taints; keeping it
		// keeps a toleration's countdown running and the list unchanged.
		for _, l := range liveTaints {
			lm, _ := l.(map[string]any)
			if lm["key"] == t.Key && lm["effect"] == string(t.Effect) && lm["timeAdded"] != nil {
				m["timeAdded"] = lm["timeAdded"]
			}
		}
		taints = append(taints, m)
	}
	if exists {
		before := strings.Split(live.GetAnnotations()[annotationTaints], ",")
		others, _, _ := unstructured.NestedSlice(live.Object, "spec", "taints")
		for _, o := range others {
			key, _, _ := unstructured.NestedString(o.(map[string]any), "key")
			if !slices.Contains(before, key) && !slices.Contains(mine, key) {
				taints = append(taints, o)
			}
		}
	}
	if len(taints) > 0 {
		spec["taints"] = taints
	}

	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(ClusterGVK)
	u.SetName(p.Cluster)
	u.SetLabels(labels)
	u.SetAnnotations(map[string]string{
		annotationTaints: strings.Join(mine, ","),
		annotationLabels: strings.Join(slices.Sorted(maps.Keys(props.ClusterLabels)), ","),
	})
	return u
}

// clusterUpToDate says whether the live Cluster has every label,
// annotation and spec field of want.
func clusterUpToDate(live, want *unstructured.Unstructured) bool {
	for k, v := range want.GetLabels() {
		if live.GetLabels()[k] != v {
			return false
		}
	}
	for k, v := range want.GetAnnotations() {
		if live.GetAnnotations()[k] != v {
			return false
		}
	}
	liveSpec, _, _ := unstructured.NestedMap(live.Object, "spec")
	wantSpec, _, _ := unstructured.NestedMap(want.Object, "spec")
	for k, v := range wantSpec {
		if !equalJSON(liveSpec[k], v) {
			return false
		}
	}
	// A field Marina no longer sets (a region removed) must go too.
	for _, k := range []string{"provider", "region", "zones", "taints", "proxyURL", "insecureSkipTLSVerification"} {
		if _, ok := wantSpec[k]; !ok {
			if v, ok := liveSpec[k]; ok && v != nil && v != false {
				return false
			}
		}
	}
	return true
}

func equalJSON(a, b any) bool {
	return fmt.Sprint(normalize(a)) == fmt.Sprint(normalize(b))
}

// normalize turns the int64 and []string a caller may build into the
// shapes a decoded object has.
func normalize(v any) any {
	switch t := v.(type) {
	case []any:
		out := make([]any, len(t))
		for i := range t {
			out[i] = normalize(t[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = normalize(x)
		}
		return out
	}
	return v
}
