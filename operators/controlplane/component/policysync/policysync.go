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
//
// RBAC cannot narrow a grant by namespace name or by label, and
// namespaces and Roles are granted cluster-wide. A ValidatingAdmissionPolicy
// (ScopeName) does, for User only: whatever its roles say, it never writes
// in the namespaces the engine and Kubernetes keep (ReservedNamespace) nor
// touches an object Marina's operators made. The sync operator refuses the
// same objects before it sends them; the policy is there for a bug in it,
// or a stolen kubeconfig. It holds requests the federation API server
// admits itself: those it passes on to an aggregated API server (the
// engine's cluster.karmada.io, its search and metrics APIs) are that
// server's to admit, and rights to impersonate or to bind cluster-wide
// hand the user's reach to another name. Neither belongs in what is
// aggregated into ExtraName. The kubeconfig is published right after the
// policy is applied, a moment before the API server enforces it; the
// sync operator's own refusal covers that moment.
package policysync

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	admissionv1ac "k8s.io/client-go/applyconfigurations/admissionregistration/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
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
	// ScopeName is the ValidatingAdmissionPolicy, and its binding, that
	// keeps User out of reserved namespaces and Marina's own objects.
	ScopeName = "marina-sync-operator-scope"
	// controlPlaneManager is the controlplane operator's value of
	// LabelManagedBy (render.ManagedBy, not imported here: that package
	// embeds the chart, which the sync operator has no use for).
	controlPlaneManager = "marina-controlplane"
)

// reservedNames and reservedPrefixes are the namespaces the engine and
// Kubernetes keep for themselves: their components, the members'
// credentials (karmada-cluster) and the Works of each member
// (karmada-es-<member>). A later prune of an object there would delete
// something the engine relies on.
var (
	reservedNames    = []string{"default", "karmada-system", "karmada-cluster"}
	reservedPrefixes = []string{"kube-", "karmada-es-"}
	// marinaManagers are the values of LabelManagedBy of Marina's
	// operators.
	marinaManagers = []string{marinav1alpha1.ManagedByValue, controlPlaneManager}
)

// ReservedNamespace says whether ns is one the sync operator never writes
// in.
func ReservedNamespace(ns string) bool {
	return slices.Contains(reservedNames, ns) || slices.ContainsFunc(reservedPrefixes, func(p string) bool { return strings.HasPrefix(ns, p) })
}

// MarinaManaged says whether labels mark an object one of Marina's
// operators made, which the sync operator never touches, and names the
// manager.
func MarinaManaged(labels map[string]string) (string, bool) {
	v := labels[marinav1alpha1.LabelManagedBy]
	return v, slices.Contains(marinaManagers, v)
}

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
		{"ValidatingAdmissionPolicy " + ScopeName, scopePolicy(user, labels)},
		{"ValidatingAdmissionPolicyBinding " + ScopeName, admissionv1ac.ValidatingAdmissionPolicyBinding(ScopeName).WithLabels(labels).
			WithSpec(admissionv1ac.ValidatingAdmissionPolicyBindingSpec().WithPolicyName(ScopeName).
				WithValidationActions(admissionregistrationv1.Deny))},
	} {
		if err := c.Apply(ctx, o.obj, client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %s in the federation API server: %w", o.what, err)
		}
	}
	return nil
}

// scopePolicy refuses user's writes in reserved namespaces (a Namespace
// itself counts as in it) and to objects labelled as Marina's, before or
// after the write, so that relabelling takes nothing over either. Every
// resource and subresource is matched (a token of a ServiceAccount in
// kube-system, a Namespace's finalize), and every operation that changes
// something, exec and port-forward (CONNECT) included. Admission runs
// after RBAC: what the grant refuses never gets here.
func scopePolicy(user string, labels map[string]string) *admissionv1ac.ValidatingAdmissionPolicyApplyConfiguration {
	var reserved []string
	for _, n := range reservedNames {
		reserved = append(reserved, "variables.ns == "+quote(n))
	}
	for _, p := range reservedPrefixes {
		reserved = append(reserved, "variables.ns.startsWith("+quote(p)+")")
	}
	managers := "[" + strings.Join(mapQuote(marinaManagers), ", ") + "]"
	// object is null on a DELETE, oldObject on a CREATE; a
	// subresource's body (a TokenRequest, a Scale) may carry no labels.
	managed := func(o string) string {
		return fmt.Sprintf("%[1]s != null && has(%[1]s.metadata) && has(%[1]s.metadata.labels) && %[2]s in %[1]s.metadata.labels && %[1]s.metadata.labels[%[2]s] in %[3]s",
			o, quote(marinav1alpha1.LabelManagedBy), managers)
	}
	what := "request.resource.resource + ' ' + (variables.objectNamespace == '' ? '' : variables.objectNamespace + '/') + variables.objectName"
	return admissionv1ac.ValidatingAdmissionPolicy(ScopeName).WithLabels(labels).WithSpec(
		admissionv1ac.ValidatingAdmissionPolicySpec().
			// A policy that cannot be evaluated refuses the write: it
			// exists to hold the operator in, not to be skipped.
			WithFailurePolicy(admissionregistrationv1.Fail).
			WithMatchConstraints(admissionv1ac.MatchResources().WithResourceRules(
				admissionv1ac.NamedRuleWithOperations().
					WithAPIGroups("*").WithAPIVersions("*").WithResources("*/*").
					WithOperations(admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete, admissionregistrationv1.Connect))).
			WithMatchConditions(admissionv1ac.MatchCondition().WithName("sync-operator").
				WithExpression("request.userInfo.username == "+quote(user))).
			// The request leaves out what is empty: a cluster-scoped
			// object's namespace, the name of one created with
			// generateName (the object has it by now).
			WithVariables(
				admissionv1ac.Variable().WithName("objectNamespace").
					WithExpression("has(request.namespace) ? request.namespace : ''"),
				admissionv1ac.Variable().WithName("objectName").
					WithExpression("has(request.name) && request.name != '' ? request.name : "+
						"object != null && has(object.metadata) && has(object.metadata.name) ? object.metadata.name : ''"),
				admissionv1ac.Variable().WithName("ns").
					WithExpression("request.resource.group == '' && request.resource.resource == 'namespaces' ? variables.objectName : variables.objectNamespace")).
			WithValidations(
				admissionv1ac.Validation().
					WithExpression("!("+strings.Join(reserved, " || ")+")").
					WithReason(metav1.StatusReasonForbidden).
					WithMessageExpression(quote(user+" may not write in namespace ")+" + variables.ns + "+
						quote(", which the engine and Kubernetes keep for themselves: ")+" + "+what),
				admissionv1ac.Validation().
					WithExpression("!("+managed("object")+")").
					WithReason(metav1.StatusReasonForbidden).
					WithMessageExpression(quote(user+" may not write objects labelled "+marinav1alpha1.LabelManagedBy+" as Marina's: ")+" + "+what),
				admissionv1ac.Validation().
					WithExpression("!("+managed("oldObject")+")").
					WithReason(metav1.StatusReasonForbidden).
					WithMessageExpression(quote(user+" may not change or delete what Marina's operators made: ")+" + "+what),
			))
}

// quote is s as a CEL string literal: CEL's double-quoted strings take
// Go's escapes, and the messages hold apostrophes.
func quote(s string) string { return strconv.Quote(s) }

func mapQuote(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = quote(s)
	}
	return out
}

// Hint is what a person reads next to an object marina-sync was refused:
// how to let it write that kind.
const Hint = User + " may not write it there; an administrator of that control plane grants more with a ClusterRole labelled " + AggregateLabel + "=true (see policies/README.md)"
