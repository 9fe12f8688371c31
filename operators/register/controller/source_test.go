package controller

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestControlPlaneInitialized(t *testing.T) {
	cond := func(typ, status string) any { return map[string]any{"type": typ, "status": status} }
	for _, tc := range []struct {
		name   string
		status map[string]any
		want   bool
	}{
		{"no status", nil, false},
		{"v1beta2 initialized", map[string]any{"initialization": map[string]any{"controlPlaneInitialized": true}}, true},
		{"v1beta2 not yet", map[string]any{"initialization": map[string]any{"infrastructureProvisioned": true, "controlPlaneInitialized": false}}, false},
		{"v1beta1 controlPlaneReady", map[string]any{"controlPlaneReady": true}, true},
		{"v1beta1 condition", map[string]any{"conditions": []any{cond("InfrastructureReady", "True"), cond("ControlPlaneInitialized", "True")}}, true},
		{"v1beta1 condition False", map[string]any{"conditions": []any{cond("ControlPlaneInitialized", "False")}}, false},
		{"v1beta2 with the deprecated v1beta1 conditions", map[string]any{"deprecated": map[string]any{"v1beta1": map[string]any{"conditions": []any{cond("ControlPlaneInitialized", "True")}}}}, true},
		{"another condition True", map[string]any{"conditions": []any{cond("Available", "True")}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &unstructured.Unstructured{Object: map[string]any{}}
			if tc.status != nil {
				c.Object["status"] = tc.status
			}
			if got := controlPlaneInitialized(c); got != tc.want {
				t.Errorf("controlPlaneInitialized = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestJitterStaysWithinTenPercent(t *testing.T) {
	for range 1000 {
		if d := jitter(30e9); d < 27e9 || d > 33e9 {
			t.Fatalf("jitter(30s) = %s", d)
		}
	}
}

func TestOnlyInlineCredentials(t *testing.T) {
	kubeconfig := func(cluster, user string) []byte {
		return []byte(`apiVersion: v1
kind: Config
clusters: [{name: m, cluster: {server: "https://10.0.0.1:6443", ` + cluster + `}}]
users: [{name: u, user: {` + user + `}}]
contexts: [{name: c, context: {cluster: m, user: u}}]
current-context: c
`)
	}
	for _, tc := range []struct {
		name          string
		cluster, user string
		refused       bool
	}{
		{"inline token", `certificate-authority-data: Zm9v`, `token: abc`, false},
		{"inline certificate", `certificate-authority-data: Zm9v`, `client-certificate-data: Zm9v, client-key-data: Zm9v`, false},
		{"the operator's own token file", `certificate-authority-data: Zm9v`, `tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token`, true},
		{"a client certificate file", `certificate-authority-data: Zm9v`, `client-certificate: /etc/tls.crt, client-key: /etc/tls.key`, true},
		{"a CA file", `certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt`, `token: abc`, true},
		{"a credential plugin", `certificate-authority-data: Zm9v`, `exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh}`, true},
		{"impersonation", `certificate-authority-data: Zm9v`, `token: abc, as: system:admin`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := onlyInlineCredentials(kubeconfig(tc.cluster, tc.user))
			if (err != nil) != tc.refused {
				t.Errorf("refused = %v (%v), want %v", err != nil, err, tc.refused)
			}
		})
	}
}
