package kmsvault_test

// Tests against a real Vault dev server (the binary `make test-binaries`
// builds from Vault's source), started on loopback for each test.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/kms/pkg/service"

	"github.com/marina-platform/marina/internal/kmsvault"
	"github.com/marina-platform/marina/internal/localenv/vault"
	"github.com/marina-platform/marina/internal/testenv"
)

func startVault(t *testing.T) (vault.Server, *vaultapi.Client) {
	t.Helper()
	assets := os.Getenv(testenv.AssetsEnv)
	if assets == "" {
		t.Fatalf("%s is not set: run `make test`, which builds Vault from source", testenv.AssetsEnv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	srv := vault.Server{Vault: filepath.Join(assets, "vault"), Dir: t.TempDir(), Address: addr, RootToken: "test-root"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func file(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func newService(t *testing.T, srv vault.Server, auth kmsvault.Auth, reg prometheus.Registerer) *kmsvault.Service {
	t.Helper()
	s, err := kmsvault.New(kmsvault.Config{
		Address: srv.URL(), TransitMount: srv.Mount(), KeyName: srv.Key(), Auth: auth, Timeout: 2 * time.Second, MaxRetries: 1,
	}, kmsvault.NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEncryptDecryptRotate is the path the API server takes: status,
// encrypt a data key, decrypt it, and after a rotation in Vault a new key ID
// while old ciphertexts still decrypt.
func TestEncryptDecryptRotate(t *testing.T) {
	ctx := context.Background()
	srv, admin := startVault(t)
	reg := prometheus.NewRegistry()
	s := newService(t, srv, kmsvault.Auth{TokenFile: file(t, srv.RootToken)}, reg)

	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Healthz != "ok" || st.Version != "v2" || st.KeyID != "transit/marina:v1" {
		t.Fatalf("status %+v", st)
	}
	dek := []byte("a data encryption key of 32 byte")
	enc, err := s.Encrypt(ctx, "uid-1", dek)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(enc.Ciphertext, []byte("vault:v1:")) || bytes.Contains(enc.Ciphertext, dek) || enc.KeyID != st.KeyID {
		t.Fatalf("encrypt response %q key %s", enc.Ciphertext, enc.KeyID)
	}
	got, err := s.Decrypt(ctx, "uid-2", &service.DecryptRequest{Ciphertext: enc.Ciphertext, KeyID: enc.KeyID})
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("decrypt = %q, %v", got, err)
	}

	if _, err := admin.Logical().WriteWithContext(ctx, srv.Mount()+"/keys/"+srv.Key()+"/rotate", nil); err != nil {
		t.Fatal(err)
	}
	st2, err := s.Status(ctx)
	if err != nil || st2.KeyID != "transit/marina:v2" {
		t.Fatalf("status after rotation %+v, %v", st2, err)
	}
	enc2, err := s.Encrypt(ctx, "uid-3", dek)
	if err != nil || !bytes.HasPrefix(enc2.Ciphertext, []byte("vault:v2:")) || enc2.KeyID != st2.KeyID {
		t.Fatalf("encrypt after rotation %q %s, %v", enc2.Ciphertext, enc2.KeyID, err)
	}
	if got, err := s.Decrypt(ctx, "uid-4", &service.DecryptRequest{Ciphertext: enc.Ciphertext, KeyID: enc.KeyID}); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("the old ciphertext no longer decrypts: %q, %v", got, err)
	}
	for _, op := range []string{"encrypt", "decrypt", "status"} {
		if n := testutil.ToFloat64(mustCounter(t, reg, op, "ok")); n < 2 {
			t.Errorf("marina_kms_vault_requests_total{operation=%q,result=ok} = %v", op, n)
		}
	}
}

// TestAppRole logs in with an AppRole whose policy allows only the transit
// key, and is refused with a wrong secret ID.
func TestAppRole(t *testing.T) {
	ctx := context.Background()
	srv, admin := startVault(t)
	must := func(path string, data map[string]any) *vaultapi.Secret {
		t.Helper()
		s, err := admin.Logical().WriteWithContext(ctx, path, data)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return s
	}
	must("sys/auth/approle", map[string]any{"type": "approle"})
	must("sys/policies/acl/kms", map[string]any{"policy": `
path "transit/encrypt/marina" { capabilities = ["update"] }
path "transit/decrypt/marina" { capabilities = ["update"] }
path "transit/keys/marina" { capabilities = ["read"] }
`})
	must("auth/approle/role/kms", map[string]any{"token_policies": "kms", "token_ttl": "1h"})
	roleID, err := admin.Logical().ReadWithContext(ctx, "auth/approle/role/kms/role-id")
	if err != nil {
		t.Fatal(err)
	}
	secretID := must("auth/approle/role/kms/secret-id", nil)

	s := newService(t, srv, kmsvault.Auth{RoleID: roleID.Data["role_id"].(string), SecretIDFile: file(t, secretID.Data["secret_id"].(string))}, nil)
	enc, err := s.Encrypt(ctx, "", []byte("dek"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Decrypt(ctx, "", &service.DecryptRequest{Ciphertext: enc.Ciphertext}); err != nil || string(got) != "dek" {
		t.Fatalf("decrypt = %q, %v", got, err)
	}

	// The operator holds the secret ID in memory rather than in a file.
	inMemory := newService(t, srv, kmsvault.Auth{RoleID: roleID.Data["role_id"].(string), SecretID: secretID.Data["secret_id"].(string)}, nil)
	if _, err := inMemory.Status(ctx); err != nil {
		t.Fatalf("status with the secret ID in memory: %v", err)
	}
	// Logout revokes the login's token; the next call logs in again.
	tokens := func() int {
		t.Helper()
		l, err := admin.Logical().ListWithContext(ctx, "auth/token/accessors")
		if err != nil || l == nil {
			t.Fatalf("list token accessors: %v", err)
		}
		return len(l.Data["keys"].([]any))
	}
	before := tokens()
	inMemory.Logout(ctx)
	if after := tokens(); after != before-1 {
		t.Errorf("tokens after Logout: %d, want %d", after, before-1)
	}
	if _, err := inMemory.Status(ctx); err != nil {
		t.Fatalf("status after Logout: %v", err)
	}

	bad := newService(t, srv, kmsvault.Auth{RoleID: roleID.Data["role_id"].(string), SecretID: "not-the-secret-id"}, nil)
	if _, err := bad.Encrypt(ctx, "", []byte("dek")); !errors.Is(err, kmsvault.ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
}

// TestFaults: a wrong token, a missing key, and Vault down then back.
func TestFaults(t *testing.T) {
	ctx := context.Background()
	srv, _ := startVault(t)

	wrongToken := newService(t, srv, kmsvault.Auth{TokenFile: file(t, "not-a-token")}, nil)
	if _, err := wrongToken.Encrypt(ctx, "", []byte("dek")); !errors.Is(err, kmsvault.ErrAuth) {
		t.Errorf("wrong token: err = %v, want ErrAuth", err)
	}

	missing, err := kmsvault.New(kmsvault.Config{
		Address: srv.URL(), KeyName: "no-such-key", Auth: kmsvault.Auth{TokenFile: file(t, srv.RootToken)}, Timeout: 2 * time.Second,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := missing.Status(ctx); !errors.Is(err, kmsvault.ErrKeyNotFound) || !strings.Contains(err.Error(), "transit/no-such-key") {
		t.Errorf("missing key: err = %v, want ErrKeyNotFound naming it", err)
	}

	s := newService(t, srv, kmsvault.Auth{TokenFile: file(t, srv.RootToken)}, nil)
	before, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatalf("status with Vault down: %v; want the last key ID and a health message", err)
	}
	if st.Healthz == "ok" || st.KeyID != before.KeyID || !strings.Contains(st.Healthz, "unreachable") {
		t.Errorf("status with Vault down: %+v", st)
	}
	if _, err := s.Encrypt(ctx, "", []byte("dek")); !errors.Is(err, kmsvault.ErrUnreachable) {
		t.Errorf("encrypt with Vault down: err = %v, want ErrUnreachable", err)
	}

	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := srv.Start(startCtx); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Status(ctx); err != nil || st.Healthz != "ok" {
		t.Errorf("status after Vault came back: %+v, %v", st, err)
	}
}

func TestConfigIsChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  kmsvault.Config
		want string
	}{
		{"no address", kmsvault.Config{KeyName: "k", Auth: kmsvault.Auth{TokenFile: "f"}}, "address"},
		{"no auth", kmsvault.Config{Address: "https://v:8200", KeyName: "k"}, "exactly one Vault auth method"},
		{"two auths", kmsvault.Config{Address: "https://v:8200", KeyName: "k", Auth: kmsvault.Auth{TokenFile: "f", KubernetesRole: "r"}}, "got 2"},
		{"AppRole without secret", kmsvault.Config{Address: "https://v:8200", KeyName: "k", Auth: kmsvault.Auth{RoleID: "r"}}, "secret ID"},
		{"token in memory and AppRole", kmsvault.Config{Address: "https://v:8200", KeyName: "k", Auth: kmsvault.Auth{Token: "t", RoleID: "r", SecretID: "s"}}, "got 2"},
		{"bad CA", kmsvault.Config{Address: "https://v:8200", KeyName: "k", CACert: []byte("nope"), Auth: kmsvault.Auth{TokenFile: "f"}}, "no PEM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := kmsvault.New(tc.cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, op, result string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "marina_kms_vault_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["operation"] == op && labels["result"] == result {
				c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
				c.Add(m.GetCounter().GetValue())
				return c
			}
		}
	}
	t.Fatalf("no marina_kms_vault_requests_total{operation=%q,result=%q}", op, result)
	return nil
}
