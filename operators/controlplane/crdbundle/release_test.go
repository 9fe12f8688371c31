package crdbundle

import (
	"errors"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/controlplane/engine"
)

// releaseBundle reads the engine's real CRD bundle of a supported release
// (../shared/karmada here and in CI).
func releaseBundle(t *testing.T, version string) *Bundle {
	t.Helper()
	b, err := ReadFile(testenv.EngineBundle(t, version))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReleaseBundles parses the engine's own bundle of every supported
// release and fills its conversion patches as the engine's installers do.
func TestReleaseBundles(t *testing.T) {
	conv := &Conversion{Service: "fra1-webhook", Namespace: "team-a", CABundle: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")}
	for _, r := range engine.Releases() {
		t.Run(r.Checked, func(t *testing.T) {
			b := releaseBundle(t, r.Checked)
			// Everything karmada-controller-manager watches at start.
			for _, name := range []string{
				"propagationpolicies.policy.karmada.io", "clusterpropagationpolicies.policy.karmada.io",
				"overridepolicies.policy.karmada.io", "clusteroverridepolicies.policy.karmada.io",
				"federatedresourcequotas.policy.karmada.io", "clustertaintpolicies.policy.karmada.io",
				"resourcebindings.work.karmada.io", "clusterresourcebindings.work.karmada.io", "works.work.karmada.io",
				"resourceinterpretercustomizations.config.karmada.io", "resourceinterpreterwebhookconfigurations.config.karmada.io",
				"workloadrebalancers.apps.karmada.io", "serviceimports.multicluster.x-k8s.io", "serviceexports.multicluster.x-k8s.io",
				"remedies.remedy.karmada.io", "federatedhpas.autoscaling.karmada.io", "cronfederatedhpas.autoscaling.karmada.io",
				"multiclusteringresses.networking.karmada.io", "multiclusterservices.networking.karmada.io",
			} {
				if find(b.CRDs, name) == nil {
					t.Errorf("the bundle has no %s", name)
				}
			}
			if len(b.CRDs) != 19 || len(b.Patches) != 2 {
				t.Errorf("%d CRDs and %d patches, want 19 and 2", len(b.CRDs), len(b.Patches))
			}

			plain, err := b.Resolve(nil)
			if err != nil {
				t.Fatal(err)
			}
			if c := find(plain, "resourcebindings.work.karmada.io").Spec.Conversion; c != nil && c.Strategy == apiextensionsv1.WebhookConverter {
				t.Errorf("without a webhook, ResourceBinding converts through one: %+v", c)
			}

			crds, err := b.Resolve(conv)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"resourcebindings.work.karmada.io", "clusterresourcebindings.work.karmada.io"} {
				crd := find(crds, name)
				c := crd.Spec.Conversion
				if c == nil || c.Strategy != apiextensionsv1.WebhookConverter || c.Webhook == nil || c.Webhook.ClientConfig == nil {
					t.Fatalf("%s: conversion %+v, want through the webhook", name, c)
				}
				if got := *c.Webhook.ClientConfig.URL; got != "https://fra1-webhook.team-a.svc:443/convert" {
					t.Errorf("%s: conversion URL %s", name, got)
				}
				if string(c.Webhook.ClientConfig.CABundle) != string(conv.CABundle) {
					t.Errorf("%s: caBundle %q, want the webhook's CA", name, c.Webhook.ClientConfig.CABundle)
				}
				// The patch adds conversion and changes nothing else.
				if len(crd.Spec.Versions) != len(find(plain, name).Spec.Versions) {
					t.Errorf("%s: the patch changed the versions", name)
				}
			}
			if c := find(b.CRDs, "resourcebindings.work.karmada.io").Spec.Conversion; c != nil && c.Strategy == apiextensionsv1.WebhookConverter {
				t.Error("Resolve changed the cached bundle")
			}
		})
	}
}

// TestResolveRefusesUnfillablePatches: a release whose patch carries a
// placeholder Marina does not know is reported, naming the file.
func TestResolveRefusesUnfillablePatches(t *testing.T) {
	b := releaseBundle(t, engine.Releases()[0].Checked)
	b.Patches[0].Raw = []byte(strings.Replace(string(b.Patches[0].Raw), "{{caBundle}}", "{{caBundleV2}}", 1))
	_, err := b.Resolve(&Conversion{Service: "s", Namespace: "n", CABundle: []byte("ca")})
	if !errors.Is(err, ErrContent) || !strings.Contains(err.Error(), b.Patches[0].File) || !strings.Contains(err.Error(), "{{caBundleV2}}") {
		t.Fatalf("err = %v, want ErrContent naming %s and the placeholder", err, b.Patches[0].File)
	}
}

func find(crds []*apiextensionsv1.CustomResourceDefinition, name string) *apiextensionsv1.CustomResourceDefinition {
	for _, c := range crds {
		if c.Name == name {
			return c
		}
	}
	return nil
}
