// Package registration is what the register operator may do inside a
// federation API server, and no more: read and write the engine's Cluster
// objects and the credential Secrets of the karmada-cluster namespace
// that a push-mode join leaves there, and hold propagation policies back
// from the members another control plane dispatches to. The controlplane operator grants it
// to User, the common name of the certificate behind the kubeconfig that
// ControlPlane status.registrationKubeconfigSecretRef names; the register
// operator never holds the control plane's admin kubeconfig.
package registration

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// User is the register operator's user in the federation API server.
	User = "marina:register-operator"
	// Name is the ClusterRole, the Role and their bindings.
	Name = "marina:register-operator"
	// Namespace holds the credential Secrets of joined members, as
	// karmadactl join leaves them.
	Namespace = "karmada-cluster"
)

// ClusterRules are the cluster-wide rights: the engine's Clusters (create
// and patch for server-side apply, list to refuse a member joined twice
// under two names, delete to unjoin), reading the namespace the Secrets
// live in, and the propagation policies' dispatch switch.
var ClusterRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"cluster.karmada.io"}, Resources: []string{"clusters"}, Verbs: []string{"get", "list", "create", "patch", "delete"}},
	// The credential Secrets are owned by their Cluster with
	// blockOwnerDeletion, as karmadactl makes them; an API server with
	// the OwnerReferencesPermissionEnforcement admission plugin asks for
	// this to allow it.
	{APIGroups: []string{"cluster.karmada.io"}, Resources: []string{"clusters/finalizers"}, Verbs: []string{"update"}},
	{APIGroups: []string{""}, Resources: []string{"namespaces"}, ResourceNames: []string{Namespace}, Verbs: []string{"get"}},
	// A standby control plane's propagation policies hold back from the
	// members another control plane dispatches to: the operator watches
	// them and applies that one field (spec.suspension.
	// dispatchingOnClusters) with a field manager of its own.
	{APIGroups: []string{"policy.karmada.io"}, Resources: []string{"propagationpolicies", "clusterpropagationpolicies"}, Verbs: []string{"get", "list", "watch", "patch"}},
}

// NamespaceRules are the rights in Namespace: the members' credential
// Secrets, which the join applies and the unjoin deletes.
var NamespaceRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "create", "patch", "delete"}},
}

// Deploy applies the roles and their bindings to user, labelled with
// labels. Namespace must exist: the controlplane operator makes it with the
// engine's other namespace.
func Deploy(ctx context.Context, c client.Client, fieldManager, user string, labels map[string]string) error {
	role := rbacv1ac.ClusterRole(Name).WithLabels(labels)
	for _, r := range ClusterRules {
		role.WithRules(rule(r))
	}
	local := rbacv1ac.Role(Name, Namespace).WithLabels(labels)
	for _, r := range NamespaceRules {
		local.WithRules(rule(r))
	}
	subject := rbacv1ac.Subject().WithAPIGroup(rbacv1.GroupName).WithKind(rbacv1.UserKind).WithName(user)
	objs := []struct {
		what string
		obj  runtime.ApplyConfiguration
	}{
		{"ClusterRole " + Name, role},
		{"ClusterRoleBinding " + Name, rbacv1ac.ClusterRoleBinding(Name).WithLabels(labels).WithSubjects(subject).
			WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName(Name))},
		{"Role " + Namespace + "/" + Name, local},
		{"RoleBinding " + Namespace + "/" + Name, rbacv1ac.RoleBinding(Name, Namespace).WithLabels(labels).WithSubjects(subject).
			WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("Role").WithName(Name))},
	}
	for _, o := range objs {
		if err := c.Apply(ctx, o.obj, client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %s in the federation API server: %w", o.what, err)
		}
	}
	return nil
}

func rule(r rbacv1.PolicyRule) *rbacv1ac.PolicyRuleApplyConfiguration {
	out := rbacv1ac.PolicyRule().WithAPIGroups(r.APIGroups...).WithResources(r.Resources...).WithVerbs(r.Verbs...)
	if len(r.ResourceNames) > 0 {
		out.WithResourceNames(r.ResourceNames...)
	}
	return out
}
