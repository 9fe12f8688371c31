package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/operators/controlplane/component/aggregatedapiserver"
	"github.com/marina-platform/marina/operators/controlplane/component/apiservice"
	"github.com/marina-platform/marina/operators/controlplane/component/metricsadapter"
	"github.com/marina-platform/marina/operators/controlplane/component/ownership"
	"github.com/marina-platform/marina/operators/controlplane/component/search"
	"github.com/marina-platform/marina/operators/controlplane/component/webhook"
	"github.com/marina-platform/marina/operators/controlplane/engine"
)

// AdminUser is the user of the admin kubeconfig (its certificate's common
// name in charts/controlplane's certificates.yaml).
const AdminUser = "marina:admin"

// The engine's namespaces in the federation API server, as its installers
// make them: karmada-system holds the components' Leases and the
// aggregated API server's Service, karmada-cluster the members' credentials.
const (
	engineNamespace  = "karmada-system"
	clusterNamespace = "karmada-cluster"
)

// reconcileComponents runs kube-controller-manager and the enabled engine
// components, registers the aggregated API server and the webhook with the
// federation API server (and removes what disabled components registered),
// and waits until every Deployment has rolled out, every APIService is
// Available and the webhook answers.
func (r *Reconciler) reconcileComponents(ctx context.Context, s *scope) (result, error) {
	const cond = marinav1alpha1.ConditionComponentsReady
	cp := s.cp
	parts := []string{"kube-controller-manager"}
	engineOn := false
	for _, o := range optionalComponents(cp) {
		if o.enabled {
			parts = append(parts, o.part)
			engineOn = true
		}
	}
	// The namespaces come first: the components expect them at start.
	if engineOn {
		if err := r.applyFederation(ctx, s, namespace(engineNamespace), namespace(clusterNamespace)); err != nil {
			s.blocked(cond, marinav1alpha1.ReasonAPIServerUnavailable, err.Error())
			return retryAfter(r.RetryAfter), nil
		}
	}
	if err := r.applyParts(ctx, s, parts...); err != nil {
		return proceed, err
	}

	var pending []string
	reason := marinav1alpha1.ReasonRolloutInProgress
	for _, part := range parts {
		p, err := r.deploymentProblem(ctx, s, cp.Name+"-"+part)
		if err != nil {
			return proceed, err
		}
		if p != "" {
			pending = append(pending, p)
			if rolloutStuck(p) {
				reason = marinav1alpha1.ReasonRolloutStuck
			}
		}
	}

	for _, x := range extensionAPIServers {
		problem, err := r.reconcileExtensionAPIServer(ctx, s, x)
		if err != nil {
			s.blocked(cond, federationReason(err), err.Error())
			return retryAfter(r.RetryAfter), nil
		}
		if problem != "" && !slices.ContainsFunc(pending, func(p string) bool { return strings.HasPrefix(p, cp.Name+"-"+x.part+":") }) {
			// The server runs, yet the aggregator cannot use it.
			pending = append(pending, problem)
			if reason == marinav1alpha1.ReasonRolloutInProgress {
				reason = marinav1alpha1.ReasonAPIServiceUnavailable
			}
		}
	}

	webhookRunning := !slices.ContainsFunc(pending, func(p string) bool { return strings.HasPrefix(p, cp.Name+"-webhook:") })
	problem, err := r.reconcileWebhook(ctx, s, webhookRunning)
	if err != nil {
		s.blocked(cond, federationReason(err), err.Error())
		return retryAfter(r.RetryAfter), nil
	}
	if problem != "" {
		pending = append(pending, problem)
		if reason == marinav1alpha1.ReasonRolloutInProgress {
			reason = marinav1alpha1.ReasonWebhookUnavailable
		}
	}

	if len(pending) > 0 {
		s.blocked(cond, reason, strings.Join(pending, "; "))
		if reason == marinav1alpha1.ReasonRolloutInProgress || reason == marinav1alpha1.ReasonRolloutStuck {
			return retryAfter(rolloutRecheck), nil
		}
		// Nothing in the management cluster changes when an APIService
		// turns Available: look again.
		return retryAfter(probeInterval), nil
	}
	s.done(cond, fmt.Sprintf("%s run", strings.Join(parts, ", ")))
	return proceed, nil
}

// federationReason is the reason of an error writing to the federation API
// server: an object someone else made is a Conflict a person resolves;
// anything else, the API server not taking the write.
func federationReason(err error) string {
	if errors.Is(err, ownership.ErrNotOurs) {
		return marinav1alpha1.ReasonConflict
	}
	return marinav1alpha1.ReasonAPIServerUnavailable
}

func isEnabled(cp *marinav1alpha1.ControlPlane, key string) bool {
	for _, o := range optionalComponents(cp) {
		if o.key == key {
			return o.enabled
		}
	}
	return false
}

// extensionAPIServer is one of the engine's extension API servers: its
// spec key, its object-name suffix and how it is registered with the
// federation API server's aggregator and taken out again.
type extensionAPIServer struct {
	key, part string
	server    apiservice.Server
	deploy    func(context.Context, client.Client, string, apiservice.Values) error
	destroy   func(ctx context.Context, c client.Client, fieldManager, namespace string, labels map[string]string) error
}

// extensionAPIServers are registered in this order; the aggregated API
// server first, since the other components watch the Clusters it serves.
// It also owns the cluster proxy's RBAC, binding the administrator.
var extensionAPIServers = []extensionAPIServer{
	{"aggregatedAPIServer", "aggregated-apiserver", aggregatedapiserver.Server,
		func(ctx context.Context, c client.Client, fieldManager string, v apiservice.Values) error {
			return aggregatedapiserver.Deploy(ctx, c, fieldManager, aggregatedapiserver.Values{Values: v, ProxyAdmins: []string{AdminUser}})
		}, aggregatedapiserver.Destroy},
	{"metricsAdapter", "metrics-adapter", metricsadapter.Server, metricsadapter.Server.Deploy, metricsadapter.Server.Destroy},
	{"search", "search", search.Server, search.Server.Deploy, search.Server.Destroy},
}

// reconcileExtensionAPIServer registers an extension API server's APIs with
// the federation API server, trusting the server's serving CA, or removes
// the registration when the server is off. It returns what keeps an
// APIService from being Available.
func (r *Reconciler) reconcileExtensionAPIServer(ctx context.Context, s *scope, x extensionAPIServer) (string, error) {
	cp := s.cp
	labels := federationLabels(cp, x.part)
	if !isEnabled(cp, x.key) {
		return "", x.destroy(ctx, s.fed, FieldManager, engineNamespace, labels)
	}
	ca, problem := caBundle(s, cp.Name+"-"+x.part+"-tls", "the "+x.part)
	if problem != "" {
		return problem, nil
	}
	if err := x.deploy(ctx, s.fed, FieldManager, apiservice.Values{
		Namespace:    engineNamespace,
		ExternalName: fmt.Sprintf("%s-%s.%s.svc.%s", cp.Name, x.part, cp.Namespace, r.clusterDomain()),
		CABundle:     ca,
		Labels:       labels,
	}); err != nil {
		return "", err
	}
	return x.server.Problem(ctx, s.fed)
}

// reconcileWebhook registers the engine's webhooks once the webhook runs
// (they fail closed, so registering them earlier would refuse every
// policy write until it does), then checks that the federation API server
// reaches it; with the webhook off it removes them.
func (r *Reconciler) reconcileWebhook(ctx context.Context, s *scope, running bool) (string, error) {
	cp := s.cp
	labels := federationLabels(cp, "webhook")
	if !isEnabled(cp, "webhook") {
		return "", webhook.Destroy(ctx, s.fed, FieldManager, labels)
	}
	if !running {
		return "", nil // the rollout is reported already
	}
	release, err := engine.Lookup(cp.Spec.Version)
	if err != nil {
		return err.Error(), nil
	}
	ca, problem := caBundle(s, cp.Name+"-webhook-tls", "the webhook")
	if problem != "" {
		return problem, nil
	}
	if err := webhook.Deploy(ctx, s.fed, FieldManager, webhook.Values{
		Release:  release,
		BaseURL:  fmt.Sprintf("https://%s-webhook.%s.svc:443", cp.Name, cp.Namespace),
		CABundle: ca,
		Labels:   labels,
	}); err != nil {
		return "", err
	}
	if err := webhook.Check(ctx, s.fed, engineNamespace); err != nil {
		return fmt.Sprintf("webhook %s-webhook: %v", cp.Name, err), nil
	}
	return "", nil
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
