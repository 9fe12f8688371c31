package controller

import (
	"testing"
)

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
