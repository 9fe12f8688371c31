package vault

import (
	"context"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/marina-platform/marina/internal/localenv/proc"
	"github.com/marina-platform/marina/internal/testenv"
)

func vaultBinary(t *testing.T) string {
	t.Helper()
	assets := os.Getenv(testenv.AssetsEnv)
	if assets == "" {
		t.Fatalf("%s is not set: run `make test`, which builds Vault from source", testenv.AssetsEnv)
	}
	bin := filepath.Join(assets, "vault")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s=%s has no vault binary (run `make test-binaries`): %v", testenv.AssetsEnv, assets, err)
	}
	return bin
}

// freeAddress finds a loopback port that is free together with the next
// one, which Vault takes for its cluster listener.
func freeAddress(t *testing.T) string {
	t.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		next, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+1)))
		l.Close()
		if err == nil {
			next.Close()
			return l.Addr().String()
		}
	}
	t.Fatal("no two consecutive free ports on 127.0.0.1")
	return ""
}

func write(ctx context.Context, t *testing.T, c *vaultapi.Client, path string, data map[string]any) map[string]any {
	t.Helper()
	secret, err := c.Logical().WriteWithContext(ctx, path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	if secret == nil {
		return nil
	}
	return secret.Data
}

func encrypt(ctx context.Context, t *testing.T, c *vaultapi.Client, s Server, plaintext string) string {
	t.Helper()
	out := write(ctx, t, c, s.Mount()+"/encrypt/"+s.Key(), map[string]any{"plaintext": base64.StdEncoding.EncodeToString([]byte(plaintext))})
	ct, _ := out["ciphertext"].(string)
	return ct
}

func decrypt(ctx context.Context, t *testing.T, c *vaultapi.Client, s Server, ciphertext string) string {
	t.Helper()
	out := write(ctx, t, c, s.Mount()+"/decrypt/"+s.Key(), map[string]any{"ciphertext": ciphertext})
	b64, _ := out["plaintext"].(string)
	pt, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("decrypt %s: plaintext is not base64: %v", ciphertext, err)
	}
	return string(pt)
}

func TestTransitEncryptRotateRewrap(t *testing.T) {
	s := Server{Vault: vaultBinary(t), Dir: t.TempDir(), Address: freeAddress(t), RootToken: "marina-test-root"}
	t.Cleanup(func() { _ = s.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pid, ok := proc.Running(s.Process())
	if !ok {
		t.Fatal("vault not running after Start")
	}
	c, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}

	const secret = "a Secret's data encryption key"
	v1 := encrypt(ctx, t, c, s, secret)
	if !strings.HasPrefix(v1, "vault:v1:") {
		t.Fatalf("ciphertext %q, want prefix vault:v1:", v1)
	}
	if got := decrypt(ctx, t, c, s, v1); got != secret {
		t.Fatalf("decrypted %q, want %q", got, secret)
	}

	// After a rotation old ciphertexts still decrypt, and rewrap moves them
	// to the new key version without exposing the plaintext.
	write(ctx, t, c, s.Mount()+"/keys/"+s.Key()+"/rotate", nil)
	if got := decrypt(ctx, t, c, s, v1); got != secret {
		t.Fatalf("after rotation decrypted %q, want %q", got, secret)
	}
	out := write(ctx, t, c, s.Mount()+"/rewrap/"+s.Key(), map[string]any{"ciphertext": v1})
	v2, _ := out["ciphertext"].(string)
	if !strings.HasPrefix(v2, "vault:v2:") {
		t.Fatalf("rewrapped ciphertext %q, want prefix vault:v2:", v2)
	}
	if got := decrypt(ctx, t, c, s, v2); got != secret {
		t.Fatalf("rewrapped ciphertext decrypted to %q, want %q", got, secret)
	}

	// A second Start reuses the running server: same process, and the
	// rotated key (which dev mode keeps only in memory) is still there.
	if err := s.Start(ctx); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	if again, _ := proc.Running(s.Process()); again != pid {
		t.Fatalf("second Start runs pid %d; want the running %d reused", again, pid)
	}
	if got := decrypt(ctx, t, c, s, v2); got != secret {
		t.Fatalf("after a second Start decrypted %q, want %q", got, secret)
	}
	if err := s.Healthy(ctx); err != nil {
		t.Fatalf("Healthy: %v", err)
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, ok := proc.Running(s.Process()); ok {
		t.Fatal("vault still recorded as running after Stop")
	}
	// The test process is vault's parent: give the reaper in proc.Start a
	// moment to collect the exited child.
	gone := syscall.Kill(pid, 0) == syscall.ESRCH
	for i := 0; i < 20 && !gone; i++ {
		time.Sleep(100 * time.Millisecond)
		gone = syscall.Kill(pid, 0) == syscall.ESRCH
	}
	if !gone {
		t.Fatalf("vault (pid %d) still exists after Stop", pid)
	}
	if err := s.Healthy(ctx); err == nil {
		t.Fatal("Healthy after Stop")
	}

	// A new dev server starts empty: Start sets transit up again.
	if err := s.Start(ctx); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	if ct := encrypt(ctx, t, c, s, secret); !strings.HasPrefix(ct, "vault:v1:") {
		t.Fatalf("after a restart ciphertext %q, want prefix vault:v1: of a new key", ct)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
}

// TestDataDirKeepsKeysAcrossARestart: with DataDir a stopped and started
// server unseals itself and still decrypts what it encrypted before, with
// the key version a rotation made; in memory it would have a new key.
func TestDataDirKeepsKeysAcrossARestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	s := Server{Vault: vaultBinary(t), Dir: dir, DataDir: filepath.Join(dir, "data"), Address: freeAddress(t), RootToken: "test-root"}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	c, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	write(ctx, t, c, s.Mount()+"/keys/"+s.Key()+"/rotate", nil)
	ciphertext := encrypt(ctx, t, c, s, "kept")

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if got := decrypt(ctx, t, c, s, ciphertext); got != "kept" {
		t.Errorf("after the restart %s decrypts to %q", ciphertext, got)
	}
	key, err := c.Logical().ReadWithContext(ctx, s.Mount()+"/keys/"+s.Key())
	if err != nil {
		t.Fatal(err)
	}
	if v := key.Data["latest_version"]; v == nil || v.(interface{ String() string }).String() != "2" {
		t.Errorf("latest_version after the restart = %v, want the rotated 2", v)
	}

	// The storage answers only to the root token it was made with; another
	// one is an error that says how to start over, not a silent 403 later.
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	other := s
	other.RootToken = "another-root"
	err = other.Start(ctx)
	if err == nil {
		_ = other.Stop()
	}
	if err == nil || !strings.Contains(proc.LogTail(other.Process(), 5), "remove the folder") {
		t.Errorf("start with another root token: %v; log: %s", err, proc.LogTail(other.Process(), 5))
	}
}
