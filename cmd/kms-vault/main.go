// Command kms-vault is a Kubernetes KMS v2 plugin backed by Vault's transit
// engine. It serves the KMS gRPC API on a unix socket for the API server
// next to it (Marina runs it as a native sidecar of every federation API
// server) and Prometheus metrics over HTTP.
//
//	kms-vault --listen=/var/run/kmsplugin/socket.sock \
//	  --vault-address=https://vault.example.com:8200 --key=federation \
//	  --auth=kubernetes --kubernetes-role=kms
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/kms/pkg/service"

	"github.com/marina-platform/marina/internal/kmsvault"
	"github.com/marina-platform/marina/internal/version"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "kms-vault:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("kms-vault", flag.ContinueOnError)
	listen := fs.String("listen", "/var/run/kmsplugin/socket.sock", "unix socket the API server connects to")
	metricsAddr := fs.String("metrics-bind-address", ":8095", "address of the Prometheus metrics and /healthz endpoint; 0 disables it")
	grpcTimeout := fs.Duration("grpc-timeout", 30*time.Second, "deadline of one KMS call, Vault's retries included")
	var cfg kmsvault.Config
	fs.StringVar(&cfg.Address, "vault-address", "", "Vault's address, such as https://vault.example.com:8200 (required)")
	fs.StringVar(&cfg.Namespace, "vault-namespace", "", "Vault Enterprise namespace")
	fs.StringVar(&cfg.TransitMount, "transit-mount", "transit", "path of the transit engine")
	fs.StringVar(&cfg.KeyName, "key", "", "transit key name (required)")
	caFile := fs.String("vault-ca-file", "", "PEM bundle that signed Vault's certificate; the system roots when empty")
	fs.DurationVar(&cfg.Timeout, "vault-timeout", 10*time.Second, "timeout of one request to Vault")
	fs.IntVar(&cfg.MaxRetries, "vault-max-retries", 2, "retries of a request that failed with a 5xx or a connection error")
	fs.StringVar(&cfg.Auth.TokenFile, "token-file", "", "file holding a Vault token (token auth)")
	fs.StringVar(&cfg.Auth.AppRolePath, "approle-path", "approle", "mount path of the AppRole auth method")
	fs.StringVar(&cfg.Auth.RoleID, "approle-role-id", "", "AppRole role ID (AppRole auth)")
	fs.StringVar(&cfg.Auth.SecretIDFile, "approle-secret-id-file", "", "file holding the AppRole secret ID (AppRole auth)")
	fs.StringVar(&cfg.Auth.KubernetesPath, "kubernetes-path", "kubernetes", "mount path of the Kubernetes auth method")
	fs.StringVar(&cfg.Auth.KubernetesRole, "kubernetes-role", "", "Vault role bound to this pod's service account (Kubernetes auth)")
	fs.StringVar(&cfg.Auth.ServiceAccountTokenFile, "service-account-token-file", kmsvault.DefaultServiceAccountTokenFile, "service account token (Kubernetes auth)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("component", "kms-vault")

	if *caFile != "" {
		ca, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("vault CA bundle: %w", err)
		}
		cfg.CACert = ca
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	svc, err := kmsvault.New(cfg, kmsvault.NewMetrics(reg))
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// A socket left by an earlier run would make the listen fail.
	if err := os.Remove(*listen); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", *listen, err)
	}
	grpcSvc := service.NewGRPCService(*listen, *grpcTimeout, logged{svc, log})
	errc := make(chan error, 2)
	go func() { errc <- grpcSvc.ListenAndServe() }()
	if *metricsAddr != "0" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
			st, err := svc.Status(r.Context())
			switch {
			case err != nil:
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
			case st.Healthz != "ok":
				http.Error(w, st.Healthz, http.StatusServiceUnavailable)
			default:
				_, _ = fmt.Fprintln(w, "ok", st.KeyID)
			}
		})
		srv := &http.Server{Addr: *metricsAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- srv.ListenAndServe() }()
		defer func() { _ = srv.Close() }()
	}
	log.Info("Serving", "version", version.Version, "socket", *listen, "vault", cfg.Address,
		"transitMount", cfg.TransitMount, "key", cfg.KeyName)

	select {
	case err := <-errc:
		grpcSvc.Close()
		return err
	case <-ctx.Done():
		log.Info("Stopping")
		grpcSvc.Shutdown()
		return nil
	}
}

// logged logs each failed call, with the kind of failure and Vault's
// message but never the data.
type logged struct {
	service.Service
	log *slog.Logger
}

func (l logged) Encrypt(ctx context.Context, uid string, data []byte) (*service.EncryptResponse, error) {
	resp, err := l.Service.Encrypt(ctx, uid, data)
	if err != nil {
		l.log.Error("Encrypt failed", "uid", uid, "result", kmsvault.Result(err), "error", err.Error())
	}
	return resp, err
}

func (l logged) Decrypt(ctx context.Context, uid string, req *service.DecryptRequest) ([]byte, error) {
	data, err := l.Service.Decrypt(ctx, uid, req)
	if err != nil {
		l.log.Error("Decrypt failed", "uid", uid, "keyID", req.KeyID, "result", kmsvault.Result(err), "error", err.Error())
	}
	return data, err
}

func (l logged) Status(ctx context.Context) (*service.StatusResponse, error) {
	st, err := l.Service.Status(ctx)
	switch {
	case err != nil:
		l.log.Error("Status failed", "result", kmsvault.Result(err), "error", err.Error())
	case st.Healthz != "ok":
		l.log.Warn("Vault is unhealthy; serving the last key ID", "keyID", st.KeyID, "health", st.Healthz)
	}
	return st, err
}
