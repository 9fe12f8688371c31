// Package policysync is what the sync operator may do inside a federation
// API server: write the engine's policies and the namespaces and
// namespaced RBAC that policy bundles hand out to tenants, and no more.
// The controlplane operator grants it to User, the common name of the
// certificate behind the kubeconfig that ControlPlane
// status.syncKubeconfigSecretRef names; the sync operator never holds the
// control plane's admin kubeconfig.
//
// A PolicySet may hold any kind, so Marina's grant cannot be the whole
// story. A platform team lets marina-sync write more in a control plane
// the way Kubernetes extends its own roles: a ClusterRole there labelled
// AggregateLabel: "true" is folded into ExtraName by
// kube-controller-manager's clusterrole-aggregation controller. Only an
// administrator of that control plane can make one (RBAC refuses a role
// that grants more than its author holds), so a PolicySet author cannot
// widen marina-sync's rights through a PolicySet.
package policysync

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// User is the sync operator's user in the federation API server.
	User = "marina:sync-operator"
	// Name is the ClusterRole of Marina's grant, and its binding.
	Name = "marina:sync-operator"
	// ExtraName is the aggregated ClusterRole, and its binding: what a
	// platform team adds.
	ExtraName = "marina:sync-operator:extra"
	// AggregateLabel on a ClusterRole in the federation API server adds
	// its rules to the sync operator's.
	AggregateLabel = "marina.dev/aggregate-to-sync-operator"
)

// written are the verbs a PolicySet's objects need: server-side apply
// (patch, and create for an object that is not there yet), the watch that
// sees drift (list, watch), the read before an apply, and pruning; and
// update, which a Role in a bundle commonly grants on these kinds and RBAC
// lets only a holder grant.
var written = []string{"get", "list", "watch", "create", "update", "patch", "delete"}

// Rules are Marina's grant: every kind of the engine's policy API
// (propagation, override, quota and taint policies, cluster-wide and
// namespaced), namespaces, and Roles and RoleBindings. RBAC's escalation
// check still applies to the last two: a Role can only grant what the
// operator holds, and a binding only to such a Role. Binding Kubernetes'
// own admin, edit or view roles, as the tenant-example bundle does, needs
// the bind verb on them, which a platform team grants through
// AggregateLabel (see policies/README.md).
var Rules = []rbacv1.PolicyRule{
	{APIGroups: []string{"policy.karmada.io"}, Resources: []string{
		"propagationpolicies", "clusterpropagationpolicies",
		"overridepolicies", "clusteroverridepolicies",
		"federatedresourcequotas", "clustertaintpolicies",
	}, Verbs: written},
	{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: written},
	{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"roles", "rolebindings"}, Verbs: written},
}

// Deploy applies both ClusterRoles and their bindings to user, labelled
// with labels. The aggregated role's rules belong to
// kube-controller-manager, so the apply sets only its aggregationRule.
func Deploy(ctx context.Context, c client.Client, fieldManager, user string, labels map[string]string) error {
	role := rbacv1ac.ClusterRole(Name).WithLabels(labels)
	for _, r := range Rules {
		role.WithRules(rbacv1ac.PolicyRule().WithAPIGroups(r.APIGroups...).WithResources(r.Resources...).WithVerbs(r.Verbs...))
	}
	extra := rbacv1ac.ClusterRole(ExtraName).WithLabels(labels).WithAggregationRule(
		rbacv1ac.AggregationRule().WithClusterRoleSelectors(
			metav1ac.LabelSelector().WithMatchLabels(map[string]string{AggregateLabel: "true"})))
	subject := rbacv1ac.Subject().WithAPIGroup(rbacv1.GroupName).WithKind(rbacv1.UserKind).WithName(user)
	binding := func(name string) *rbacv1ac.ClusterRoleBindingApplyConfiguration {
		return rbacv1ac.ClusterRoleBinding(name).WithLabels(labels).WithSubjects(subject).
			WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName(name))
	}
	for _, o := range []struct {
		what string
		obj  runtime.ApplyConfiguration
	}{
		{"ClusterRole " + Name, role},
		{"ClusterRoleBinding " + Name, binding(Name)},
		{"ClusterRole " + ExtraName, extra},
		{"ClusterRoleBinding " + ExtraName, binding(ExtraName)},
	} {
		if err := c.Apply(ctx, o.obj, client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %s in the federation API server: %w", o.what, err)
		}
	}
	return nil
}

// Hint is what a person reads next to an object marina-sync was refused:
// how to let it write that kind.
const Hint = User + " may not write it there; an administrator of that control plane grants more with a ClusterRole labelled " + AggregateLabel + "=true (see policies/README.md)"
