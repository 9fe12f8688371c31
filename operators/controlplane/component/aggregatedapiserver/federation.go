// Package aggregatedapiserver is what karmada-aggregated-apiserver needs
// inside the federation API server: the APIService of the cluster.karmada.io
// group and the Service it names, an ExternalName pointing at the server's
// Service in the management cluster. (Its Deployment, Service and
// certificate in the management cluster come from charts/controlplane.)
package aggregatedapiserver

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marina-platform/marina/operators/controlplane/component/apiservice"
	"github.com/marina-platform/marina/operators/controlplane/component/ownership"
)

const (
	// ServiceName is the Service the APIService names, in the engine's
	// namespace of the federation API server.
	ServiceName = "karmada-aggregated-apiserver"
	// APIServiceName registers cluster.karmada.io/v1alpha1.
	APIServiceName = "v1alpha1.cluster.karmada.io"
)

// Server is its registration with the aggregator.
var Server = apiservice.Server{
	Service: ServiceName,
	APIs:    []apiservice.GroupVersion{{Group: "cluster.karmada.io", Version: "v1alpha1", GroupPriorityMinimum: 2000, VersionPriority: 10}},
}

// DNSNames are the names the aggregated API server's serving certificate
// must carry besides its own Service's.
func DNSNames(namespace string) []string { return Server.DNSNames(namespace) }

// Values are what the federation side needs.
type Values struct {
	apiservice.Values
	// ProxyAdmins are the users bound to ProxyAdminRole: the control
	// plane's administrator.
	ProxyAdmins []string
}

// Deploy applies the Service, the APIService and the proxy role. One of
// them that someone else made is an error wrapping ownership.ErrNotOurs,
// and is left alone.
func Deploy(ctx context.Context, c client.Client, fieldManager string, v Values) error {
	for _, obj := range proxyObjects() {
		if err := ownership.Claim(ctx, c, obj, v.Labels, fieldManager); err != nil {
			return fmt.Errorf("in the federation API server: %w", err)
		}
	}
	if err := Server.Deploy(ctx, c, fieldManager, v.Values); err != nil {
		return err
	}
	return applyProxyAdmin(ctx, c, fieldManager, v)
}

// ProxyAdminRole lets its subjects use the clusters/proxy subresource the
// aggregated API server serves, as the engine's installers grant it; the
// engine's unified-auth controller turns each subject bound to it into an
// impersonation grant in every member. Marina binds the control plane's
// administrator through ProxyAdminBinding, and leaves other bindings of
// the role to people.
const (
	ProxyAdminRole    = "cluster-proxy-admin"
	ProxyAdminBinding = "marina:cluster-proxy-admin"
)

func applyProxyAdmin(ctx context.Context, c client.Client, fieldManager string, v Values) error {
	role := rbacv1ac.ClusterRole(ProxyAdminRole).WithLabels(v.Labels).WithRules(
		rbacv1ac.PolicyRule().WithAPIGroups("cluster.karmada.io").WithResources("clusters/proxy").WithVerbs("*"))
	if err := c.Apply(ctx, role, client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply ClusterRole %s in the federation API server: %w", ProxyAdminRole, err)
	}
	binding := rbacv1ac.ClusterRoleBinding(ProxyAdminBinding).WithLabels(v.Labels).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName(ProxyAdminRole))
	for _, u := range v.ProxyAdmins {
		binding.WithSubjects(rbacv1ac.Subject().WithAPIGroup(rbacv1.GroupName).WithKind(rbacv1.UserKind).WithName(u))
	}
	if err := c.Apply(ctx, binding, client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply ClusterRoleBinding %s in the federation API server: %w", ProxyAdminBinding, err)
	}
	return nil
}

// Problem returns "" when the APIService is Available, else what the
// aggregator says about it.
func Problem(ctx context.Context, c client.Reader) (string, error) { return Server.Problem(ctx, c) }

// Destroy removes the APIService, the Service and the proxy role when
// they are Marina's.
func Destroy(ctx context.Context, c client.Client, fieldManager, namespace string, labels map[string]string) error {
	if err := Server.Destroy(ctx, c, fieldManager, namespace, labels); err != nil {
		return err
	}
	for _, obj := range proxyObjects() {
		if err := ownership.Delete(ctx, c, obj, labels, fieldManager); err != nil {
			return fmt.Errorf("in the federation API server: %w", err)
		}
	}
	return nil
}

func proxyObjects() []client.Object {
	return []client.Object{
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ProxyAdminBinding}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ProxyAdminRole}},
	}
}
