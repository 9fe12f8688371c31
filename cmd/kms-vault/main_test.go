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

// plugin is the kms-vault binary running against a Vault dev server, and a
// client on its socket.
type plugin struct {
	kms     kmsapi.KeyManagementServiceClient
	metrics string // host:port of /metrics and /healthz
	logs    *bytes.Buffer
	cmd     *exec.Cmd
	done    chan error
}

// runPlugin builds the plugin, starts Vault and the plugin, and waits until
// the plugin answers Status as the API server would ask.
func runPlugin(ctx context.Context, tb testing.TB) *plugin {
	tb.Helper()
	assets := os.Getenv(testenv.AssetsEnv)
	if assets == "" {
		tb.Fatalf("%s is not set: run `make test`", testenv.AssetsEnv)
	}
	dir := tb.TempDir()
	bin := filepath.Join(dir, "kms-vault")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		tb.Fatalf("build: %v\n%s", err, out)
	}
	srv := vault.Server{Vault: filepath.Join(assets, "vault"), Dir: dir, Address: freeAddr(tb), RootToken: "test-root"}
	if err := srv.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = srv.Stop() })
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(srv.RootToken), 0o600); err != nil {
		tb.Fatal(err)
	}

	socket := filepath.Join(dir, "kms.sock")
	p := &plugin{metrics: freeAddr(tb), logs: &bytes.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "--listen="+socket, "--metrics-bind-address="+p.metrics,
		"--vault-address="+srv.URL(), "--key="+srv.Key(), "--token-file="+tokenFile)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	tb.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
		}
		if tb.Failed() {
			tb.Logf("plugin output:\n%s", p.logs.String())
		}
	})

	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	p.kms = kmsapi.NewKeyManagementServiceClient(conn)
	var status *kmsapi.StatusResponse
	for deadline := time.Now().Add(30 * time.Second); ; {
		status, err = p.kms.Status(ctx, &kmsapi.StatusRequest{})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("status: %v", err)
	}
	if status.Healthz != "ok" || status.Version != "v2" || status.KeyId != "transit/marina:v1" {
		tb.Fatalf("status %+v", status)
	}
	return p
}

// TestPluginServesTheKMSAPI builds the plugin, runs it against a real Vault
// dev server and talks to its socket as the API server does.
func TestPluginServesTheKMSAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := runPlugin(ctx, t)
	kms, metrics, logs, cmd, done := p.kms, p.metrics, p.logs, p.cmd, p.done
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

func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
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
