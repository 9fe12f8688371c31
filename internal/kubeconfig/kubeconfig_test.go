package kubeconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteAndRead(t *testing.T) {
	// Reading a kubeconfig checks that the files it names exist.
	pki := t.TempDir()
	for _, f := range []string{"ca.crt", "tls.crt", "tls.key"} {
		if err := os.WriteFile(filepath.Join(pki, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := func(name string) string { return filepath.Join(pki, name) }
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		check   func(t *testing.T, yaml string)
	}{
		{
			name: "files, for a component's pod",
			cfg: Config{Cluster: "cp", User: "scheduler", Server: "https://cp-apiserver.ns.svc:5443",
				CAFile: file("ca.crt"), CertFile: file("tls.crt"), KeyFile: file("tls.key")},
			check: func(t *testing.T, y string) {
				for _, want := range []string{"certificate-authority: " + file("ca.crt"), "client-certificate: " + file("tls.crt"), "client-key: " + file("tls.key"), "current-context: scheduler"} {
					if !strings.Contains(y, want) {
						t.Errorf("kubeconfig lacks %q:\n%s", want, y)
					}
				}
				if strings.Contains(y, "-data:") {
					t.Errorf("kubeconfig embeds data:\n%s", y)
				}
			},
		},
		{
			name: "data, for an administrator",
			cfg: Config{Cluster: "cp", User: "admin", Server: "https://cp.example.com:5443",
				CAData: []byte("ca"), CertData: []byte("cert"), KeyData: []byte("key")},
			check: func(t *testing.T, y string) {
				if !strings.Contains(y, "client-key-data: a2V5") {
					t.Errorf("kubeconfig lacks the key data:\n%s", y)
				}
			},
		},
		{
			name: "token, for a ServiceAccount",
			cfg:  Config{Cluster: "dc2", User: "peer", Server: "https://10.210.2.10:6443", CAData: []byte("ca"), Token: "t0ken"},
			check: func(t *testing.T, y string) {
				if !strings.Contains(y, "token: t0ken") || strings.Contains(y, "client-") {
					t.Errorf("kubeconfig lacks the token or has a certificate:\n%s", y)
				}
			},
		},
		{name: "token and certificate", cfg: Config{Cluster: "cp", User: "u", Server: "https://x", CAFile: "a", CertFile: "b", KeyFile: "c", Token: "t"}, wantErr: "not both"},
		{name: "no server", cfg: Config{Cluster: "cp", User: "u", CAFile: "a", CertFile: "b", KeyFile: "c"}, wantErr: "server"},
		{name: "CA twice", cfg: Config{Cluster: "cp", User: "u", Server: "https://x", CAFile: "a", CAData: []byte("a"), CertFile: "b", KeyFile: "c"}, wantErr: "exactly one of CA"},
		{name: "certificate without key", cfg: Config{Cluster: "cp", User: "u", Server: "https://x", CAFile: "a", CertFile: "b"}, wantErr: "certificate and key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := Write(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, string(data))
			rc, err := RESTConfig(data)
			if err != nil {
				t.Fatal(err)
			}
			if rc.Host != tc.cfg.Server {
				t.Errorf("host %q, want %q", rc.Host, tc.cfg.Server)
			}
		})
	}
}
