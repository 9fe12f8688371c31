// Package aggregatedapiserver is what karmada-aggregated-apiserver needs
// inside the federation API server: the APIService of the cluster.karmada.io
// group and the Service it names, an ExternalName pointing at the server's
// Service in the management cluster. (Its Deployment, Service and
// certificate in the management cluster come from charts/controlplane.)
package aggregatedapiserver

import (
	"context"
	"encoding/base64"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marina-platform/marina/operators/controlplane/component/ownership"
)

const (
	// ServiceName is the Service the APIService names, in the engine's
	// namespace of the federation API server.
	ServiceName = "karmada-aggregated-apiserver"
	// APIServiceName registers cluster.karmada.io/v1alpha1.
	APIServiceName = "v1alpha1.cluster.karmada.io"
)

var apiServiceGVK = schema.GroupVersionKind{Group: "apiregistration.k8s.io", Version: "v1", Kind: "APIService"}

// DNSNames are the names the aggregated API server's serving certificate
// must carry besides its own Service's: the aggregator checks the
// certificate against the APIService's Service, <ServiceName>.<namespace>.svc.
func DNSNames(namespace string) []string {
	return []string{ServiceName + "." + namespace + ".svc", ServiceName + "." + namespace}
}

// Values are what the federation side needs.
type Values struct {
	// Namespace is the engine's namespace in the federation API server.
	Namespace string
	// ExternalName is the server's Service in the management cluster, as
	// a fully qualified name (<cp>-aggregated-apiserver.<ns>.svc.<domain>).
	ExternalName string
	// CABundle is the PEM that signed the server's serving certificate.
	CABundle []byte
	// Labels mark the objects as Marina's.
	Labels map[string]string
	// ProxyAdmins are the users bound to ProxyAdminRole: the control
	// plane's administrator.
	ProxyAdmins []string
}

// Deploy applies the Service, the APIService and the proxy role. One of
// them that someone else made is an error wrapping ownership.ErrNotOurs,
// and is left alone.
func Deploy(ctx context.Context, c client.Client, fieldManager string, v Values) error {
	for _, obj := range objects(v.Namespace) {
		if err := ownership.Claim(ctx, c, obj, v.Labels, fieldManager); err != nil {
			return fmt.Errorf("in the federation API server: %w", err)
		}
	}
	svc := corev1ac.Service(ServiceName, v.Namespace).WithLabels(v.Labels).
		WithSpec(corev1ac.ServiceSpec().WithType(corev1.ServiceTypeExternalName).WithExternalName(v.ExternalName).
			WithPorts(corev1ac.ServicePort().WithName("https").WithPort(443).WithProtocol(corev1.ProtocolTCP)))
	if err := c.Apply(ctx, svc, client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply Service %s/%s in the federation API server: %w", v.Namespace, ServiceName, err)
	}
	labels := map[string]any{}
	for k, val := range v.Labels {
		labels[k] = val
	}
	api := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": APIServiceName, "labels": labels},
		"spec": map[string]any{
			"group":                "cluster.karmada.io",
			"version":              "v1alpha1",
			"groupPriorityMinimum": int64(2000),
			"versionPriority":      int64(10),
			"caBundle":             base64.StdEncoding.EncodeToString(v.CABundle), // bytes: base64 in JSON
			"service":              map[string]any{"namespace": v.Namespace, "name": ServiceName, "port": int64(443)},
		},
	}}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(api), client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply APIService %s in the federation API server: %w", APIServiceName, err)
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
func Problem(ctx context.Context, c client.Reader) (string, error) {
	api := &unstructured.Unstructured{}
	api.SetGroupVersionKind(apiServiceGVK)
	if err := c.Get(ctx, client.ObjectKey{Name: APIServiceName}, api); err != nil {
		if apierrors.IsNotFound(err) {
			return "APIService " + APIServiceName + " is not registered yet", nil
		}
		return "", fmt.Errorf("read APIService %s: %w", APIServiceName, err)
	}
	conds, _, _ := unstructured.NestedSlice(api.Object, "status", "conditions")
	for _, raw := range conds {
		cond, _ := raw.(map[string]any)
		if cond["type"] != "Available" {
			continue
		}
		if cond["status"] == "True" {
			return "", nil
		}
		return fmt.Sprintf("APIService %s is not Available: %v: %v", APIServiceName, cond["reason"], cond["message"]), nil
	}
	return "APIService " + APIServiceName + " has no Available condition yet", nil
}

// Destroy removes the APIService, the Service and the proxy role when
// they are Marina's.
func Destroy(ctx context.Context, c client.Client, fieldManager, namespace string, labels map[string]string) error {
	for _, obj := range objects(namespace) {
		if err := ownership.Delete(ctx, c, obj, labels, fieldManager); err != nil {
			return fmt.Errorf("in the federation API server: %w", err)
		}
	}
	return nil
}

// objects are what Deploy makes, by kind and name.
func objects(namespace string) []client.Object {
	api := &unstructured.Unstructured{}
	api.SetGroupVersionKind(apiServiceGVK)
	api.SetName(APIServiceName)
	return []client.Object{
		api,
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: ServiceName}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ProxyAdminBinding}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ProxyAdminRole}},
	}
}
