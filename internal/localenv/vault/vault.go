// Package vault runs a Vault server in dev mode with the transit secrets
// engine: the key manager that control planes' KMS encryption of Secrets
// talks to in the local environment and in tests. Dev mode starts unsealed
// and keeps everything in memory, so a restarted server has lost its mounts
// and keys, unless Server.DataDir keeps them on disk (our dev server's
// -dev-data-dir). Start sets transit up wherever it is missing.
package vault

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/marina-platform/marina/internal/localenv/network"
	"github.com/marina-platform/marina/internal/localenv/proc"
)

const (
	// DefaultTransitMount is where the transit engine is enabled when
	// Server.TransitMount is empty.
	DefaultTransitMount = "transit"
	// DefaultTransitKey is the transit key created when Server.TransitKey is
	// empty.
	DefaultTransitKey = "marina"
	// KeyType is the type of the transit key: AES-256 in GCM mode, what
	// Kubernetes' Vault KMS plugins expect.
	KeyType = "aes256-gcm96"

	// startTimeout bounds Start when its context has no deadline of its own.
	startTimeout = time.Minute
	stopGrace    = 10 * time.Second
)

// Server is one Vault dev server.
type Server struct {
	// Vault is the vault binary.
	Vault string
	// Dir holds the pid file and the log (vault.pid, vault.log). The log
	// holds the root token: dev mode prints it at start.
	Dir string
	// Address is the host:port the server listens on, plain HTTP. Vault
	// also binds its cluster listener to the next port on the same host,
	// which dev mode offers no flag to move: keep both free. With a NetNS
	// the host must be an IP address inside that namespace.
	Address string
	// RootToken is the dev server's root token, chosen by us so that clients
	// need not read it from the log.
	RootToken string
	// NetNS is the network namespace to run in; the host's when empty.
	NetNS string
	// DataDir, when set, keeps the server's storage and unseal key on disk,
	// so that a restart keeps mounts and keys like a real Vault's would:
	// what an outage test needs. In memory when empty.
	DataDir string
	// TransitMount and TransitKey name the transit engine's mount and key;
	// DefaultTransitMount and DefaultTransitKey when empty.
	TransitMount string
	TransitKey   string
}

// Mount is the path of the transit engine.
func (s Server) Mount() string {
	if s.TransitMount == "" {
		return DefaultTransitMount
	}
	return strings.Trim(s.TransitMount, "/")
}

// Key is the name of the transit key.
func (s Server) Key() string {
	if s.TransitKey == "" {
		return DefaultTransitKey
	}
	return s.TransitKey
}

// URL is the server's address for clients (VAULT_ADDR).
func (s Server) URL() string { return "http://" + s.Address }

// Process is the server as a proc spec.
func (s Server) Process() proc.Spec {
	args := []string{
		"server", "-dev",
		"-dev-listen-address=" + s.Address,
		// Dev mode would otherwise write the root token to
		// ~/.vault-token of whoever runs the environment.
		"-dev-no-store-token",
		"-log-level=warn",
	}
	if s.DataDir != "" {
		args = append(args, "-dev-data-dir="+s.DataDir)
	}
	return proc.Spec{
		Name: "vault", Path: s.Vault, NetNS: s.NetNS, Dir: s.Dir, Args: args,
		// Through the environment rather than -dev-root-token-id, so that
		// the token does not show in every user's `ps`.
		Env: []string{"VAULT_DEV_ROOT_TOKEN_ID=" + s.RootToken},
		// Dev mode already disables mlock. The UI cannot be switched off in
		// dev mode, but a binary built without the `ui` tag (ours) only
		// serves a "not available" page there.
	}
}

func (s Server) validate() error {
	if s.Vault == "" || s.Dir == "" || s.Address == "" || s.RootToken == "" {
		return errors.New("vault server: binary, folder, address and root token are required")
	}
	host, _, err := net.SplitHostPort(s.Address)
	if err != nil {
		return fmt.Errorf("vault server address %q: %w", s.Address, err)
	}
	if s.NetNS != "" && net.ParseIP(host) == nil {
		return fmt.Errorf("vault server address %q: an IP address is needed to reach it inside network namespace %s", s.Address, s.NetNS)
	}
	return nil
}

// Start starts the server unless it already runs, waits until it is
// unsealed and active, then enables the transit engine and creates the key
// where they are missing. A server that already runs keeps its keys.
func (s Server) Start(ctx context.Context) error {
	if err := s.validate(); err != nil {
		return err
	}
	if _, err := os.Stat(s.Vault); err != nil {
		return fmt.Errorf("vault binary: %w (run `make test-binaries`)", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	if _, err := proc.Start(s.Process()); err != nil {
		return fmt.Errorf("start vault: %w", err)
	}
	if err := s.WaitHealthy(ctx); err != nil {
		return err
	}
	return s.EnsureTransit(ctx)
}

// Stop stops the server; dev mode loses every key with it.
func (s Server) Stop() error { return proc.Stop(s.Process(), stopGrace) }

// Client is an API client for the server, authenticated with the root
// token. With a NetNS it dials from inside that namespace.
func (s Server) Client() (*vaultapi.Client, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	cfg := vaultapi.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("vault client configuration: %w", cfg.Error)
	}
	cfg.Address = s.URL()
	if t, ok := cfg.HttpClient.Transport.(*http.Transport); ok {
		// The server is on loopback or inside a namespace of ours: never
		// through a proxy from the environment.
		t.Proxy = nil
		if s.NetNS != "" {
			t.DialContext = network.DialContext(s.NetNS)
		}
	}
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client for %s: %w", s.URL(), err)
	}
	c.SetToken(s.RootToken)
	c.ClearNamespace()
	return c, nil
}

// Healthy returns nil when the server answers and is initialised, unsealed
// and active.
func (s Server) Healthy(ctx context.Context) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	return s.healthy(ctx, c)
}

func (s Server) healthy(ctx context.Context, c *vaultapi.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	h, err := c.Sys().HealthWithContext(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("vault at %s: %w", s.URL(), err)
	case !h.Initialized:
		return fmt.Errorf("vault at %s is not initialised", s.URL())
	case h.Sealed:
		return fmt.Errorf("vault at %s is sealed", s.URL())
	case h.Standby:
		return fmt.Errorf("vault at %s is a standby", s.URL())
	}
	return nil
}

// WaitHealthy waits until the server is healthy, the context ends, or the
// process exits.
func (s Server) WaitHealthy(ctx context.Context) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	// Poll quickly; the client's own retries would hide a dead process.
	c.SetMaxRetries(0)
	spec := s.Process()
	for {
		lastErr := s.healthy(ctx, c)
		if lastErr == nil {
			return nil
		}
		if _, ok := proc.Running(spec); !ok {
			return fmt.Errorf("vault exited before it became healthy (log in %s):\n%s", spec.LogFile(), proc.LogTail(spec, 10))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("vault did not become healthy: %w (log in %s)", lastErr, spec.LogFile())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// EnsureTransit enables the transit engine at Mount and creates Key, each
// only where missing; a mount or key of another type is an error.
func (s Server) EnsureTransit(ctx context.Context) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	mounts, err := c.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return fmt.Errorf("list vault mounts: %w", err)
	}
	switch m, ok := mounts[s.Mount()+"/"]; {
	case !ok:
		err := c.Sys().MountWithContext(ctx, s.Mount(), &vaultapi.MountInput{Type: "transit", Description: "Marina: KMS encryption of Secrets"})
		if err != nil {
			return fmt.Errorf("enable the transit engine at %s: %w", s.Mount(), err)
		}
	case m.Type != "transit":
		return fmt.Errorf("vault mount %s is a %s engine, not transit", s.Mount(), m.Type)
	}

	path := s.Mount() + "/keys/" + s.Key()
	key, err := c.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return fmt.Errorf("read transit key %s: %w", path, err)
	}
	if key != nil {
		if t, _ := key.Data["type"].(string); t != KeyType {
			return fmt.Errorf("transit key %s is of type %q, want %s", path, t, KeyType)
		}
		return nil
	}
	if _, err := c.Logical().WriteWithContext(ctx, path, map[string]any{"type": KeyType}); err != nil {
		return fmt.Errorf("create transit key %s: %w", path, err)
	}
	return nil
}
