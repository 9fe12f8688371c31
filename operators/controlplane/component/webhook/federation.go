// Package webhook is what karmada-webhook needs inside the federation API
// server: the mutating and validating webhook configurations the engine's
// installer registers for the release, and a check that the federation API
// server reaches the webhook. (Its Deployment, Service and certificate in
// the management cluster come from charts/controlplane; its conversion
// endpoint is filled into the CRDs by the crds component.)
package webhook

import (
	"context"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marina-platform/marina/operators/controlplane/component/ownership"
	"github.com/marina-platform/marina/operators/controlplane/engine"
)

// legacyConfigurations are the names Marina used before it registered the
// engine's own set; they are removed wherever they are found.
var legacyConfigurations = []string{"karmada-mutating", "karmada-validating"}

// Values are what the federation side needs.
type Values struct {
	Release engine.Release
	// BaseURL is where the federation API server reaches the webhook, such
	// as https://fra1-webhook.team-a.svc:443.
	BaseURL string
	// CABundle is the PEM that signed the webhook's serving certificate.
	CABundle []byte
	// Labels mark the configurations as Marina's.
	Labels map[string]string
}

// Deploy applies the release's webhook configurations, and removes those
// of older Marina versions. A configuration of the same name that someone
// else made is an error wrapping ownership.ErrNotOurs, and is left alone.
func Deploy(ctx context.Context, c client.Client, fieldManager string, v Values) error {
	for _, obj := range configurations() {
		if err := ownership.Claim(ctx, c, obj, v.Labels, fieldManager); err != nil {
			return fmt.Errorf("in the federation API server: %w", err)
		}
	}
	mutating, validating := v.Release.WebhookConfigurations(v.BaseURL, v.CABundle, v.Labels)
	if err := c.Apply(ctx, mutating, client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply MutatingWebhookConfiguration %s in the federation API server: %w", *mutating.Name, err)
	}
	if err := c.Apply(ctx, validating, client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply ValidatingWebhookConfiguration %s in the federation API server: %w", *validating.Name, err)
	}
	return destroy(ctx, c, fieldManager, nil, legacyConfigurations...)
}

// Destroy removes the webhook configurations Marina registered: without
// the webhook, fail-closed configurations would refuse every policy write.
func Destroy(ctx context.Context, c client.Client, fieldManager string, labels map[string]string) error {
	names := append([]string{engine.MutatingWebhookConfigurationName, engine.ValidatingWebhookConfigurationName}, legacyConfigurations...)
	return destroy(ctx, c, fieldManager, labels, names...)
}

func destroy(ctx context.Context, c client.Client, fieldManager string, labels map[string]string, names ...string) error {
	for _, name := range names {
		for _, obj := range []client.Object{
			&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}},
			&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}},
		} {
			if err := ownership.Delete(ctx, c, obj, labels, fieldManager); err != nil {
				return fmt.Errorf("in the federation API server: %w", err)
			}
		}
	}
	return nil
}

func configurations() []client.Object {
	return []client.Object{
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: engine.MutatingWebhookConfigurationName}},
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: engine.ValidatingWebhookConfigurationName}},
	}
}

// Check makes the federation API server call the webhook: a dry-run create
// of a PropagationPolicy in namespace passes both of its webhooks, or says
// why the webhook cannot be reached.
func Check(ctx context.Context, c client.Client, namespace string) error {
	pp := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "policy.karmada.io/v1alpha1",
		"kind":       "PropagationPolicy",
		"metadata":   map[string]any{"namespace": namespace, "generateName": "marina-webhook-check-"},
		"spec": map[string]any{
			"resourceSelectors": []any{map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "name": "marina-webhook-check"}},
		},
	}}
	if err := c.Create(ctx, pp, client.DryRunAll); err != nil {
		return fmt.Errorf("a dry-run PropagationPolicy through the webhook: %w", err)
	}
	return nil
}
