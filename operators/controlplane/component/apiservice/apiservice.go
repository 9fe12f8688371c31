// Package apiservice registers one of the engine's extension API servers
// with the federation API server's aggregator, as the engine's installers
// do: an ExternalName Service in the engine's namespace pointing at the
// server's Service in the management cluster, and an APIService per group
// version naming that Service and trusting the server's serving CA. The
// aggregated API server, the metrics adapter and search each describe
// their registration with it.
package apiservice

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marina-platform/marina/operators/controlplane/component/ownership"
)

var gvk = schema.GroupVersionKind{Group: "apiregistration.k8s.io", Version: "v1", Kind: "APIService"}

// GroupVersion is one API an extension API server serves, with the
// priorities the engine's installer gives it.
type GroupVersion struct {
	Group, Version                        string
	GroupPriorityMinimum, VersionPriority int64
}

// Name is the APIService's name, <version>.<group>.
func (g GroupVersion) Name() string { return g.Version + "." + g.Group }

// Server is one extension API server's registration.
type Server struct {
	// Service is the name of the Service the APIServices name, in the
	// engine's namespace of the federation API server.
	Service string
	// APIs are the group versions it serves.
	APIs []GroupVersion
}

// DNSNames are the names the server's serving certificate must carry
// besides its own Service's: the aggregator checks the certificate against
// the APIService's Service, <Service>.<namespace>.svc.
func (s Server) DNSNames(namespace string) []string {
	return []string{s.Service + "." + namespace + ".svc", s.Service + "." + namespace}
}

// Values are what one registration needs.
type Values struct {
	// Namespace is the engine's namespace in the federation API server.
	Namespace string
	// ExternalName is the server's Service in the management cluster, as a
	// fully qualified name (<cp>-<component>.<ns>.svc.<domain>).
	ExternalName string
	// CABundle is the PEM that signed the server's serving certificate.
	CABundle []byte
	// Labels mark the objects as Marina's.
	Labels map[string]string
}

// Deploy applies the Service and the APIServices. One of them that someone
// else made is an error wrapping ownership.ErrNotOurs, and is left alone.
func (s Server) Deploy(ctx context.Context, c client.Client, fieldManager string, v Values) error {
	for _, obj := range s.Objects(v.Namespace) {
		if err := ownership.Claim(ctx, c, obj, v.Labels, fieldManager); err != nil {
			return fmt.Errorf("in the federation API server: %w", err)
		}
	}
	svc := corev1ac.Service(s.Service, v.Namespace).WithLabels(v.Labels).
		WithSpec(corev1ac.ServiceSpec().WithType(corev1.ServiceTypeExternalName).WithExternalName(v.ExternalName).
			WithPorts(corev1ac.ServicePort().WithName("https").WithPort(443).WithProtocol(corev1.ProtocolTCP)))
	if err := c.Apply(ctx, svc, client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply Service %s/%s in the federation API server: %w", v.Namespace, s.Service, err)
	}
	labels := map[string]any{}
	for k, val := range v.Labels {
		labels[k] = val
	}
	for _, g := range s.APIs {
		api := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": gvk.GroupVersion().String(),
			"kind":       gvk.Kind,
			"metadata":   map[string]any{"name": g.Name(), "labels": labels},
			"spec": map[string]any{
				"group":                g.Group,
				"version":              g.Version,
				"groupPriorityMinimum": g.GroupPriorityMinimum,
				"versionPriority":      g.VersionPriority,
				"caBundle":             base64.StdEncoding.EncodeToString(v.CABundle), // bytes: base64 in JSON
				"service":              map[string]any{"namespace": v.Namespace, "name": s.Service, "port": int64(443)},
			},
		}}
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(api), client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply APIService %s in the federation API server: %w", g.Name(), err)
		}
	}
	return nil
}

// Problem returns "" when every APIService is Available, else what the
// aggregator says about those that are not.
func (s Server) Problem(ctx context.Context, c client.Reader) (string, error) {
	var problems []string
	for _, g := range s.APIs {
		p, err := available(ctx, c, g.Name())
		if err != nil {
			return "", err
		}
		if p != "" {
			problems = append(problems, p)
		}
	}
	return strings.Join(problems, "; "), nil
}

func available(ctx context.Context, c client.Reader, name string) (string, error) {
	api := &unstructured.Unstructured{}
	api.SetGroupVersionKind(gvk)
	if err := c.Get(ctx, client.ObjectKey{Name: name}, api); err != nil {
		if apierrors.IsNotFound(err) {
			return "APIService " + name + " is not registered yet", nil
		}
		return "", fmt.Errorf("read APIService %s: %w", name, err)
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
		return fmt.Sprintf("APIService %s is not Available: %v: %v", name, cond["reason"], cond["message"]), nil
	}
	return "APIService " + name + " has no Available condition yet", nil
}

// Destroy removes the APIServices and the Service when they are Marina's.
func (s Server) Destroy(ctx context.Context, c client.Client, fieldManager, namespace string, labels map[string]string) error {
	for _, obj := range s.Objects(namespace) {
		if err := ownership.Delete(ctx, c, obj, labels, fieldManager); err != nil {
			return fmt.Errorf("in the federation API server: %w", err)
		}
	}
	return nil
}

// Objects are what Deploy makes, by kind and name: the APIServices first,
// so that the aggregator stops proxying before the Service goes.
func (s Server) Objects(namespace string) []client.Object {
	var objs []client.Object
	for _, g := range s.APIs {
		api := &unstructured.Unstructured{}
		api.SetGroupVersionKind(gvk)
		api.SetName(g.Name())
		objs = append(objs, api)
	}
	return append(objs, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: s.Service}})
}
