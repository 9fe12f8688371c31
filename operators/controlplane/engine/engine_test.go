package engine_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/controlplane/engine"
)

func TestLookup(t *testing.T) {
	for _, tc := range []struct {
		version, minor, kubernetes, wantErr string
	}{
		{"v1.16.8", "v1.16", "v1.34.1", ""},
		{"v1.16.0", "v1.16", "v1.34.1", ""},
		{"v1.17.5", "v1.17", "v1.35.2", ""},
		{"v1.18.0-rc.1", "v1.18", "v1.35.2", ""},
		{"v1.15.3", "", "", "engine version v1.15.3 is not supported; supported minors are v1.16, v1.17, v1.18"},
		{"not-a-version", "", "", "not supported"},
	} {
		r, err := engine.Lookup(tc.version)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("engine.Lookup(%s) err = %v, want %q", tc.version, err, tc.wantErr)
			}
			continue
		}
		if err != nil || r.Minor != tc.minor || r.Kubernetes != tc.kubernetes {
			t.Errorf("engine.Lookup(%s) = %+v, %v", tc.version, r, err)
		}
	}
}

// TestWebhookConfigurations: every path karmada-webhook serves but
// /convert, each once, in the configuration of its kind, failing closed.
func TestWebhookConfigurations(t *testing.T) {
	for _, r := range engine.Releases() {
		mutating, validating := r.WebhookConfigurations("https://cp-webhook.ns.svc:443", []byte("ca"), map[string]string{"a": "b"})
		if *mutating.Name != engine.MutatingWebhookConfigurationName || *validating.Name != engine.ValidatingWebhookConfigurationName {
			t.Errorf("names %s, %s", *mutating.Name, *validating.Name)
		}
		if len(mutating.Webhooks) != 8 || len(validating.Webhooks) != 14 {
			t.Errorf("%s: %d mutating and %d validating webhooks, want 8 and 14", r.Minor, len(mutating.Webhooks), len(validating.Webhooks))
		}
		paths := map[string]bool{}
		names := map[string]bool{}
		for _, h := range mutating.Webhooks {
			url := *h.ClientConfig.URL
			if !strings.HasPrefix(url, "https://cp-webhook.ns.svc:443/mutate-") || paths[url] || names[*h.Name] {
				t.Errorf("mutating %s at %s: wrong or twice", *h.Name, url)
			}
			paths[url], names[*h.Name] = true, true
			if *h.FailurePolicy != "Fail" || string(h.ClientConfig.CABundle) != "ca" {
				t.Errorf("mutating %s: failurePolicy %s, caBundle %q", *h.Name, *h.FailurePolicy, h.ClientConfig.CABundle)
			}
		}
		names = map[string]bool{}
		for _, h := range validating.Webhooks {
			url := *h.ClientConfig.URL
			if !strings.HasPrefix(url, "https://cp-webhook.ns.svc:443/validate-") || paths[url] || names[*h.Name] {
				t.Errorf("validating %s at %s: wrong or twice", *h.Name, url)
			}
			paths[url], names[*h.Name] = true, true
			if *h.FailurePolicy != "Fail" {
				t.Errorf("validating %s: failurePolicy %s", *h.Name, *h.FailurePolicy)
			}
		}
		for _, must := range []string{"/mutate-resourcebinding", "/validate-resourcedeletionprotection", "/validate-clustertaintpolicy"} {
			if !paths["https://cp-webhook.ns.svc:443"+must] {
				t.Errorf("%s: no webhook at %s", r.Minor, must)
			}
		}
	}
}

// TestValidationFollowsTheTable: the ControlPlane CRD admits exactly the
// minors of the table (its CEL rule is written by hand in the API types).
func TestValidationFollowsTheTable(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	crd, err := os.ReadFile(filepath.Join(root, "charts", "marina", "crds", "marina.dev_controlplanes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var minors []string
	for _, r := range engine.Releases() {
		minors = append(minors, strings.TrimPrefix(r.Minor, "v1."))
	}
	rule := "self.matches('^v1[.](" + strings.Join(minors, "|") + ")[.]')"
	if !strings.Contains(string(crd), rule) {
		t.Errorf("the ControlPlane CRD has no rule %s on spec.version: update the marker in api/v1alpha1 with the table", rule)
	}
}
