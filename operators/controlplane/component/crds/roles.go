package crds

import (
	"context"
	"fmt"
	"maps"

	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// viewable are the engine's resources that the built-in view and edit roles
// cover through karmada-view and karmada-edit, as the engine's installers
// grant them: a namespace's viewers and editors see and change its
// policies, bindings and works.
var viewable = []struct {
	group     string
	resources []string
}{
	{"autoscaling.karmada.io", []string{"cronfederatedhpas", "cronfederatedhpas/status", "federatedhpas", "federatedhpas/status"}},
	{"multicluster.x-k8s.io", []string{"serviceexports", "serviceexports/status", "serviceimports", "serviceimports/status"}},
	{"networking.karmada.io", []string{"multiclusteringresses", "multiclusteringresses/status", "multiclusterservices", "multiclusterservices/status"}},
	{"policy.karmada.io", []string{"overridepolicies", "propagationpolicies"}},
	{"work.karmada.io", []string{"resourcebindings", "resourcebindings/status", "works", "works/status"}},
}

// Roles are karmada-view and karmada-edit, aggregated into the built-in
// view and edit ClusterRoles.
func Roles(labels map[string]string) []*rbacv1ac.ClusterRoleApplyConfiguration {
	role := func(name, aggregateTo string, verbs ...string) *rbacv1ac.ClusterRoleApplyConfiguration {
		l := maps.Clone(labels)
		if l == nil {
			l = map[string]string{}
		}
		l["kubernetes.io/bootstrapping"] = "rbac-defaults"
		l["rbac.authorization.k8s.io/aggregate-to-"+aggregateTo] = "true"
		r := rbacv1ac.ClusterRole(name).WithLabels(l).
			WithAnnotations(map[string]string{"rbac.authorization.kubernetes.io/autoupdate": "true"})
		for _, v := range viewable {
			r.WithRules(rbacv1ac.PolicyRule().WithAPIGroups(v.group).WithResources(v.resources...).WithVerbs(verbs...))
		}
		return r
	}
	return []*rbacv1ac.ClusterRoleApplyConfiguration{
		role("karmada-view", "view", "get", "list", "watch"),
		role("karmada-edit", "edit", "create", "update", "patch", "delete", "deletecollection"),
	}
}

func applyRoles(ctx context.Context, c client.Client, fieldManager string, labels map[string]string) error {
	for _, r := range Roles(labels) {
		if err := c.Apply(ctx, r, client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply ClusterRole %s: %w", *r.Name, err)
		}
	}
	return nil
}
