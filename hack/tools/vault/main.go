// Command vault is a Vault dev server cut down to what Marina's tests use:
// Vault's own core, HTTP API, in-memory storage and Shamir seal, with the
// transit secrets engine and the token, AppRole and Kubernetes auth methods.
//
// Vault's full binary compiles every secrets engine, auth method, storage
// backend and seal it ships (Azure's Graph SDK alone takes minutes), which
// made it the slowest step of a cold `make test`. This main reuses the same
// packages `vault server -dev` runs, so requests are handled by real Vault
// code; it only leaves out the plugins Marina never mounts.
//
// It accepts the subset of `vault server -dev` flags the local environment
// passes, so the two binaries are interchangeable:
//
//	vault server -dev -dev-listen-address=127.0.0.1:8200 -dev-no-store-token -log-level=warn
//
// with the root token in VAULT_DEV_ROOT_TOKEN_ID.
//
// One flag of its own, -dev-data-dir=DIR, keeps the storage in DIR (Vault's
// file backend) and the single unseal key next to it, so a restarted server
// unseals itself and still has its mounts and transit keys, as a real Vault
// would after an outage. Without it storage is in memory, as in -dev.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	kubeauth "github.com/hashicorp/vault-plugin-auth-kubernetes"
	"github.com/hashicorp/vault/builtin/credential/approle"
	"github.com/hashicorp/vault/builtin/logical/transit"
	"github.com/hashicorp/vault/helper/namespace"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/internalshared/configutil"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/physical"
	"github.com/hashicorp/vault/sdk/physical/file"
	"github.com/hashicorp/vault/sdk/physical/inmem"
	"github.com/hashicorp/vault/vault"
)

// The plugins this server offers. kv, cubbyhole, system, identity and token
// are part of Vault's core and always there.
var (
	secretsEngines = map[string]logical.Factory{"transit": transit.Factory}
	authMethods    = map[string]logical.Factory{"approle": approle.Factory, "kubernetes": kubeauth.Factory}
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "vault:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 || args[0] != "server" {
		return errors.New("usage: vault server -dev [-dev-listen-address=ADDR] [-dev-root-token-id=ID] [-dev-data-dir=DIR] [-log-level=LEVEL]")
	}
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	dev := fs.Bool("dev", false, "run in dev mode: in memory, unsealed, with a known root token (required)")
	addr := fs.String("dev-listen-address", "127.0.0.1:8200", "address to serve the HTTP API on")
	rootToken := fs.String("dev-root-token-id", os.Getenv("VAULT_DEV_ROOT_TOKEN_ID"), "root token ID (default $VAULT_DEV_ROOT_TOKEN_ID)")
	// The server never stores a token; the flag is accepted for
	// compatibility with `vault server -dev`.
	fs.Bool("dev-no-store-token", true, "accepted for compatibility; this server never writes ~/.vault-token")
	level := fs.String("log-level", "info", "trace, debug, info, warn or error")
	dataDir := fs.String("dev-data-dir", "", "keep storage and the unseal key in this folder, so that a restart keeps keys and mounts (default: in memory)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if !*dev {
		return errors.New("only dev mode is supported: pass -dev")
	}
	if *rootToken == "" {
		return errors.New("a root token is required: set VAULT_DEV_ROOT_TOKEN_ID or -dev-root-token-id")
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "vault", Level: hclog.LevelFromString(*level), JSONFormat: true})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	core, err := newCore(logger, *dataDir)
	if err != nil {
		return err
	}
	defer func() { _ = core.Shutdown() }()
	if err := initDev(core, *rootToken, *dataDir); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: vaulthttp.Handler.Handler(&vault.HandlerProperties{
			Core:           core,
			ListenerConfig: &configutil.Listener{Type: "tcp", Address: *addr},
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	logger.Info("serving", "address", *addr, "secrets_engines", keys(secretsEngines), "auth_methods", keys(authMethods))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	}
}

func newCore(logger hclog.Logger, dataDir string) (*vault.Core, error) {
	var storage physical.Backend
	var err error
	if dataDir == "" {
		storage, err = inmem.NewInmem(nil, logger)
	} else if err = os.MkdirAll(dataDir, 0o700); err == nil {
		storage, err = file.NewFileBackend(map[string]string{"path": filepath.Join(dataDir, "storage")}, logger)
	}
	if err != nil {
		return nil, err
	}
	return vault.NewCore(&vault.CoreConfig{
		Physical:           storage,
		Logger:             logger,
		LogicalBackends:    secretsEngines,
		CredentialBackends: authMethods,
		BuiltinRegistry:    registry{},
		// Dev mode keeps nothing on disk, so there is nothing to lock into
		// memory; mlock also needs a capability the tests do not grant.
		DisableMlock: true,
		// A nil Seal makes the core use the Shamir seal, as dev mode does.
	})
}

// initDev does what `vault server -dev` does after start: initialise with a
// single key share, unseal, and replace the generated root token with the
// one the caller chose. With a data folder that holds an initialised
// storage it only unseals with the key kept there.
func initDev(core *vault.Core, rootToken, dataDir string) error {
	ctx := namespace.RootContext(context.Background())
	keyFile := filepath.Join(dataDir, "unseal-key")
	if dataDir != "" {
		initialised, err := core.Initialized(ctx)
		if err != nil {
			return fmt.Errorf("read storage in %s: %w", dataDir, err)
		}
		if initialised {
			// The key file is written last on the first start, so a first
			// start that was cut short leaves no key: say how to recover.
			key, err := os.ReadFile(keyFile)
			if err != nil {
				return fmt.Errorf("storage in %s is initialised but its unseal key is unreadable (a first start cut short?); remove the folder to start over: %w", dataDir, err)
			}
			if unsealed, err := core.Unseal(key); err != nil || !unsealed {
				return fmt.Errorf("unseal with %s: %v", keyFile, err)
			}
			resp, err := core.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, ClientToken: rootToken, Path: "auth/token/lookup-self"})
			if err == nil && resp.IsError() {
				err = resp.Error()
			}
			if err != nil {
				return fmt.Errorf("storage in %s does not know this root token (it was made with another one); remove the folder to start over: %w", dataDir, err)
			}
			return nil
		}
	}
	res, err := core.Initialize(ctx, &vault.InitParams{
		BarrierConfig: &vault.SealConfig{SecretShares: 1, SecretThreshold: 1, Name: "shamir"},
	})
	if err != nil {
		return fmt.Errorf("initialise: %w", err)
	}
	if unsealed, err := core.Unseal(slices.Clone(res.SecretShares[0])); err != nil || !unsealed {
		return fmt.Errorf("unseal: %v", err)
	}
	resp, err := core.HandleRequest(ctx, &logical.Request{
		Operation:   logical.UpdateOperation,
		ClientToken: res.RootToken,
		Path:        "auth/token/create",
		Data: map[string]any{
			"id":                rootToken,
			"policies":          []string{"root"},
			"no_parent":         true,
			"no_default_policy": true,
		},
	})
	if err == nil && resp.IsError() {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("create the root token: %w", err)
	}
	// The generated root token would otherwise stay valid next to ours.
	if _, err := core.HandleRequest(ctx, &logical.Request{
		Operation: logical.UpdateOperation, ClientToken: res.RootToken, Path: "auth/token/revoke-self",
	}); err != nil {
		return fmt.Errorf("revoke the generated root token: %w", err)
	}
	if dataDir != "" {
		// A dev server's convenience, as dev mode prints the key: never
		// how a real Vault keeps its unseal keys. Written last, once the
		// storage is complete.
		if err := os.WriteFile(keyFile, res.SecretShares[0], 0o600); err != nil {
			return fmt.Errorf("keep the unseal key: %w", err)
		}
	}
	return nil
}

// registry is the plugin catalog's list of built-in plugins: the same
// factories the core mounts directly, so `vault secrets list` and version
// lookups see them as built in.
type registry struct{}

func (registry) factories(t consts.PluginType) map[string]logical.Factory {
	switch t {
	case consts.PluginTypeSecrets:
		return secretsEngines
	case consts.PluginTypeCredential:
		return authMethods
	}
	return nil
}

func (r registry) Contains(name string, t consts.PluginType) bool {
	_, ok := r.factories(t)[name]
	return ok
}

func (r registry) Get(name string, t consts.PluginType) (func() (any, error), bool) {
	f, ok := r.factories(t)[name]
	if !ok {
		return nil, false
	}
	return func() (any, error) { return f, nil }, true
}

func (r registry) Keys(t consts.PluginType) []string { return keys(r.factories(t)) }

func (r registry) DeprecationStatus(name string, t consts.PluginType) (consts.DeprecationStatus, bool) {
	return consts.Supported, r.Contains(name, t)
}

func (registry) IsBuiltinEntPlugin(string, consts.PluginType) bool { return false }

func keys(m map[string]logical.Factory) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
