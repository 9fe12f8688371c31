package controller

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

// engineNamespace is where the engine's components keep their Leases in the
// federation API server (the chart's engineNamespace default).
const engineNamespace = "karmada-system"

// reconcileComponents runs kube-controller-manager and the enabled engine
// components, registers the aggregated API server with the federation API
// server, and waits until every Deployment has rolled out.
func (r *Reconciler) reconcileComponents(ctx context.Context, s *scope) (result, error) {
	const cond = marinav1alpha1.ConditionComponentsReady
	cp := s.cp
	parts := []string{"kube-controller-manager"}
	engine := false
	for _, o := range optionalComponents(cp) {
		if o.enabled {
			parts = append(parts, o.part)
			engine = true
		}
	}
	if err := r.applyParts(ctx, s, parts...); err != nil {
		return proceed, err
	}
	if engine {
		if err := r.applyFederation(ctx, s, namespace(engineNamespace)); err != nil {
			s.blocked(cond, marinav1alpha1.ReasonAPIServerUnavailable, err.Error())
			return retryAfter(r.RetryAfter), nil
		}
	}
	if isEnabled(cp, "aggregatedAPIServer") {
		if err := r.registerAggregatedAPIServer(ctx, s); err != nil {
			s.blocked(cond, marinav1alpha1.ReasonAPIServerUnavailable, err.Error())
			return retryAfter(r.RetryAfter), nil
		}
	}

	if isEnabled(cp, "webhook") {
		if err := r.registerWebhook(ctx, s); err != nil {
			s.blocked(cond, marinav1alpha1.ReasonAPIServerUnavailable, err.Error())
			return retryAfter(r.RetryAfter), nil
		}
	}

	var pending []string
	for _, part := range parts {
		p, err := r.deploymentProblem(ctx, s, cp.Name+"-"+part)
		if err != nil {
			return proceed, err
		}
		if p != "" {
			pending = append(pending, p)
		}
	}
	if len(pending) > 0 {
		s.blocked(cond, marinav1alpha1.ReasonRolloutInProgress, strings.Join(pending, "; "))
		return waitForChange(), nil
	}
	s.done(cond, fmt.Sprintf("%s run", strings.Join(parts, ", ")))
	return proceed, nil
}

func isEnabled(cp *marinav1alpha1.ControlPlane, key string) bool {
	for _, o := range optionalComponents(cp) {
		if o.key == key {
			return o.enabled
		}
	}
	return false
}

// registerAggregatedAPIServer makes the federation API server proxy the
// engine's cluster API to the aggregated API server's Service in the
// management cluster: an ExternalName Service in the engine namespace and
// the APIService pointing at it, trusting the serving certificate's CA.
func (r *Reconciler) registerAggregatedAPIServer(ctx context.Context, s *scope) error {
	cp := s.cp
	sec, ok := s.secrets[cp.Name+"-aggregated-apiserver-tls"]
	if !ok {
		return fmt.Errorf("secret %s-aggregated-apiserver-tls is missing", cp.Name)
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Namespace: engineNamespace, Name: "karmada-aggregated-apiserver"},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: fmt.Sprintf("%s-aggregated-apiserver.%s.svc.cluster.local", cp.Name, cp.Namespace),
			Ports:        []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}},
		},
	}
	svcObj, err := toUnstructured(svc)
	if err != nil {
		return err
	}
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": "v1alpha1.cluster.karmada.io"},
		"spec": map[string]any{
			"group":                "cluster.karmada.io",
			"version":              "v1alpha1",
			"groupPriorityMinimum": int64(2000),
			"versionPriority":      int64(10),
			"caBundle":             base64.StdEncoding.EncodeToString(sec.Data["ca.crt"]),
			"service":              map[string]any{"namespace": engineNamespace, "name": "karmada-aggregated-apiserver", "port": int64(443)},
		},
	}}
	return r.applyFederation(ctx, s, svcObj, apiService)
}

// engineWebhooks are the engine's admission webhooks: resource (plural) in
// group, scope, and whether it mutates, validates or both. The paths follow
// the engine's convention, /mutate-<kind> and /validate-<kind>, lowercase.
var engineWebhooks = []struct {
	group, resource, kind, scope string
	mutate, validate             bool
}{
	{"policy.karmada.io", "propagationpolicies", "propagationpolicy", "Namespaced", true, true},
	{"policy.karmada.io", "clusterpropagationpolicies", "clusterpropagationpolicy", "Cluster", true, true},
	{"policy.karmada.io", "overridepolicies", "overridepolicy", "Namespaced", true, true},
	{"policy.karmada.io", "clusteroverridepolicies", "clusteroverridepolicy", "Cluster", false, true},
	{"work.karmada.io", "works", "work", "Namespaced", true, false},
	{"cluster.karmada.io", "clusters", "cluster", "Cluster", false, true},
}

// registerWebhook points the federation API server's admission at the
// engine's webhook in the management cluster, trusting its serving CA.
// Failing closed, as the engine's installers do: a policy the webhook
// cannot check is not stored.
func (r *Reconciler) registerWebhook(ctx context.Context, s *scope) error {
	cp := s.cp
	sec, ok := s.secrets[cp.Name+"-webhook-tls"]
	if !ok {
		return fmt.Errorf("secret %s-webhook-tls is missing", cp.Name)
	}
	caBundle := base64.StdEncoding.EncodeToString(sec.Data["ca.crt"])
	base := fmt.Sprintf("https://%s-webhook.%s.svc:443/", cp.Name, cp.Namespace)
	var mutating, validating []any
	for _, w := range engineWebhooks {
		hook := func(verb string) map[string]any {
			return map[string]any{
				"name": w.kind + ".karmada.io",
				"rules": []any{map[string]any{
					"operations": []any{"CREATE", "UPDATE"}, "apiGroups": []any{w.group},
					"apiVersions": []any{"*"}, "resources": []any{w.resource}, "scope": w.scope,
				}},
				"clientConfig":            map[string]any{"url": base + verb + "-" + w.kind, "caBundle": caBundle},
				"failurePolicy":           "Fail",
				"sideEffects":             "None",
				"admissionReviewVersions": []any{"v1"},
				"timeoutSeconds":          int64(3),
			}
		}
		if w.mutate {
			mutating = append(mutating, hook("mutate"))
		}
		if w.validate {
			validating = append(validating, hook("validate"))
		}
	}
	config := func(kind, name string, hooks []any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
			"metadata": map[string]any{"name": name}, "webhooks": hooks,
		}}
	}
	return r.applyFederation(ctx, s,
		config("MutatingWebhookConfiguration", "karmada-mutating", mutating),
		config("ValidatingWebhookConfiguration", "karmada-validating", validating))
}

// applyFederation applies objects inside the control plane's API server.
func (r *Reconciler) applyFederation(ctx context.Context, s *scope, objs ...*unstructured.Unstructured) error {
	for _, o := range objs {
		if err := s.fed.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %s %s in the federation API server: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}

func namespace(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name},
	}}
}

func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	return u, nil
}
