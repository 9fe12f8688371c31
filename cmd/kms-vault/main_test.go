package main_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	kmsapi "k8s.io/kms/apis/v2"

	"github.com/marina-platform/marina/internal/localenv/vault"
	"github.com/marina-platform/marina/internal/testenv"
)

// TestPluginServesTheKMSAPI builds the plugin, runs it against a real Vault
// dev server and talks to its socket as the API server does.
func TestPluginServesTheKMSAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	assets := os.Getenv(testenv.AssetsEnv)
	if assets == "" {
		t.Fatalf("%s is not set: run `make test`", testenv.AssetsEnv)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "kms-vault")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	srv := vault.Server{Vault: filepath.Join(assets, "vault"), Dir: dir, Address: freeAddr(t), RootToken: "test-root"}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(srv.RootToken), 0o600); err != nil {
		t.Fatal(err)
	}

	socket := filepath.Join(dir, "kms.sock")
	metrics := freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--listen="+socket, "--metrics-bind-address="+metrics,
		"--vault-address="+srv.URL(), "--key="+srv.Key(), "--token-file="+tokenFile)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("plugin output:\n%s", logs.String())
		}
	}()

	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	kms := kmsapi.NewKeyManagementServiceClient(conn)
	var status *kmsapi.StatusResponse
	for deadline := time.Now().Add(30 * time.Second); ; {
		status, err = kms.Status(ctx, &kmsapi.StatusRequest{})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if status.Healthz != "ok" || status.Version != "v2" || status.KeyId != "transit/marina:v1" {
		t.Fatalf("status %+v", status)
	}
	enc, err := kms.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: []byte("data key"), Uid: "1"})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := kms.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Uid: "2"})
	if err != nil || string(dec.Plaintext) != "data key" {
		t.Fatalf("decrypt = %q, %v", dec.GetPlaintext(), err)
	}

	body := httpGet(ctx, t, "http://"+metrics+"/metrics")
	for _, want := range []string{`marina_kms_vault_requests_total{operation="encrypt",result="ok"} 1`, "marina_kms_vault_request_duration_seconds_bucket"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if h := httpGet(ctx, t, "http://"+metrics+"/healthz"); !strings.HasPrefix(h, "ok transit/marina:v1") {
		t.Errorf("/healthz = %q", h)
	}
	if strings.Contains(logs.String(), "data key") {
		t.Error("the plugin logged a plaintext")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Error("the plugin did not stop on SIGTERM")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func httpGet(ctx context.Context, t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s %s", url, resp.Status, b)
	}
	return string(b)
}
