// Package kmsvault is a Kubernetes KMS v2 service backed by Vault's transit
// engine: the API server's data encryption keys are encrypted and decrypted
// by a transit key that never leaves Vault. The key ID it reports names the
// transit key's latest version, so a rotation in Vault reaches the API
// server, which then encrypts with new keys.
//
// Nothing here logs or returns key material: plaintexts and ciphertexts go
// to Vault and back, never into an error, a log line or a metric label.
package kmsvault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/kms/pkg/service"
)

// Config is how to reach the transit key.
type Config struct {
	// Address of Vault, such as https://vault.example.com:8200.
	Address string
	// Namespace is the Vault Enterprise namespace; empty for none.
	Namespace string
	// TransitMount is the transit engine's path (transit by default).
	TransitMount string
	// KeyName is the transit key.
	KeyName string
	// CACert is the PEM bundle that signed Vault's serving certificate; the
	// system roots when empty.
	CACert []byte
	// Timeout bounds one request to Vault (10 s by default).
	Timeout time.Duration
	// MaxRetries of a request that failed with a 5xx or a connection error
	// (2 by default), with Vault's client's backoff in between.
	MaxRetries int
	Auth       Auth
}

// Auth is exactly one way to log in to Vault.
type Auth struct {
	// TokenFile holds a Vault token.
	TokenFile string

	// AppRole: the auth method's mount path (approle by default), the role
	// ID, and a file holding the secret ID.
	AppRolePath, RoleID, SecretIDFile string

	// Kubernetes: the auth method's mount path (kubernetes by default), the
	// Vault role, and the service account token file (the pod's projected
	// token by default).
	KubernetesPath, KubernetesRole, ServiceAccountTokenFile string

	// Token, SecretID and ServiceAccountToken hold the credential itself
	// instead of a file: for callers that have it in memory, such as the
	// controlplane operator checking a ControlPlane's Vault settings before
	// it starts the plugin. A file, when set, wins.
	Token, SecretID, ServiceAccountToken string
}

// DefaultServiceAccountTokenFile is where Kubernetes mounts a pod's token.
const DefaultServiceAccountTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

func (a Auth) method() (string, error) {
	var set []string
	if a.TokenFile != "" || a.Token != "" {
		set = append(set, "token")
	}
	if a.RoleID != "" || a.SecretIDFile != "" || a.SecretID != "" {
		set = append(set, "approle")
	}
	if a.KubernetesRole != "" {
		set = append(set, "kubernetes")
	}
	if len(set) != 1 {
		return "", fmt.Errorf("exactly one Vault auth method is needed (a token file, an AppRole, or a Kubernetes role); got %d: %v", len(set), set)
	}
	if set[0] == "approle" && (a.RoleID == "" || (a.SecretIDFile == "" && a.SecretID == "")) {
		return "", errors.New("AppRole auth needs both a role ID and a secret ID")
	}
	return set[0], nil
}

// Errors callers tell apart, wrapped by what Encrypt, Decrypt and Status
// return.
var (
	// ErrUnreachable: Vault did not answer.
	ErrUnreachable = errors.New("vault unreachable")
	// ErrAuth: Vault refused the credentials or the token's policy.
	ErrAuth = errors.New("vault refused the credentials")
	// ErrKeyNotFound: the transit key does not exist.
	ErrKeyNotFound = errors.New("transit key not found")
)

// Service is the KMS v2 service. It is safe for concurrent use.
type Service struct {
	cfg     Config
	method  string
	client  *vault.Client
	metrics *Metrics

	mu        sync.Mutex
	loggedIn  bool
	lastKeyID string
}

var _ service.Service = (*Service)(nil)

// New checks cfg and returns a Service; it does not contact Vault.
func New(cfg Config, metrics *Metrics) (*Service, error) {
	if cfg.Address == "" || cfg.KeyName == "" {
		return nil, errors.New("the Vault address and the transit key name are required")
	}
	if cfg.TransitMount == "" {
		cfg.TransitMount = "transit"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 2
	}
	method, err := cfg.Auth.method()
	if err != nil {
		return nil, err
	}
	vc := vault.DefaultConfig()
	vc.Address = cfg.Address
	vc.Timeout = cfg.Timeout
	vc.MaxRetries = cfg.MaxRetries
	transport := vc.HttpClient.Transport.(*http.Transport)
	// Never the environment's proxy: Vault is reached directly or not at all.
	transport.Proxy = nil
	if len(cfg.CACert) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.CACert) {
			return nil, errors.New("the Vault CA bundle holds no PEM certificate")
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	client, err := vault.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	// The client reads VAULT_TOKEN and friends from the environment; only
	// the configured credentials count.
	client.ClearToken()
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Service{cfg: cfg, method: method, client: client, metrics: metrics}, nil
}

// Encrypt encrypts a data encryption key with the transit key.
func (s *Service) Encrypt(ctx context.Context, _ string, plaintext []byte) (*service.EncryptResponse, error) {
	start := time.Now()
	secret, err := s.write(ctx, s.cfg.TransitMount+"/encrypt/"+s.cfg.KeyName, map[string]any{
		"plaintext": base64.StdEncoding.EncodeToString(plaintext),
	})
	s.metrics.observe("encrypt", start, err)
	if err != nil {
		return nil, err
	}
	ct, _ := secret.Data["ciphertext"].(string)
	version, err := keyVersion(ct)
	if err != nil {
		return nil, err
	}
	return &service.EncryptResponse{Ciphertext: []byte(ct), KeyID: s.keyID(version)}, nil
}

// Decrypt decrypts a data encryption key. Vault picks the key version from
// the ciphertext, so keys encrypted before a rotation still decrypt.
func (s *Service) Decrypt(ctx context.Context, _ string, req *service.DecryptRequest) ([]byte, error) {
	start := time.Now()
	secret, err := s.write(ctx, s.cfg.TransitMount+"/decrypt/"+s.cfg.KeyName, map[string]any{
		"ciphertext": string(req.Ciphertext),
	})
	s.metrics.observe("decrypt", start, err)
	if err != nil {
		return nil, err
	}
	pt, _ := secret.Data["plaintext"].(string)
	data, err := base64.StdEncoding.DecodeString(pt)
	if err != nil {
		return nil, errors.New("vault returned a plaintext that is not base64")
	}
	return data, nil
}

// Status reports health and the key ID of the transit key's latest
// version. While Vault cannot be reached it reports the last key ID it knew
// with a health message saying why, so that the API server keeps its cached
// keys and reports the plugin unhealthy rather than rotating.
func (s *Service) Status(ctx context.Context) (*service.StatusResponse, error) {
	start := time.Now()
	version, err := s.LatestVersion(ctx)
	s.metrics.observe("status", start, err)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.lastKeyID == "" {
			return nil, err
		}
		return &service.StatusResponse{Version: "v2", Healthz: err.Error(), KeyID: s.lastKeyID}, nil
	}
	s.lastKeyID = s.keyID(version)
	return &service.StatusResponse{Version: "v2", Healthz: "ok", KeyID: s.lastKeyID}, nil
}

// LatestVersion reads the transit key's latest version.
func (s *Service) LatestVersion(ctx context.Context) (int64, error) {
	secret, err := s.read(ctx, s.cfg.TransitMount+"/keys/"+s.cfg.KeyName)
	if err != nil {
		return 0, err
	}
	n, ok := secret.Data["latest_version"].(json.Number)
	if !ok {
		return 0, fmt.Errorf("transit key %s: no latest_version in Vault's answer", s.cfg.KeyName)
	}
	return n.Int64()
}

// keyID names the transit key version the API server sees: a new version
// is a new key ID.
func (s *Service) keyID(version int64) string {
	return fmt.Sprintf("%s/%s:v%d", s.cfg.TransitMount, s.cfg.KeyName, version)
}

// keyVersion reads N from a transit ciphertext "vault:vN:…".
func keyVersion(ciphertext string) (int64, error) {
	parts := strings.SplitN(ciphertext, ":", 3)
	if len(parts) != 3 || parts[0] != "vault" || !strings.HasPrefix(parts[1], "v") {
		return 0, errors.New("vault returned a ciphertext without the vault:vN: prefix")
	}
	return strconv.ParseInt(parts[1][1:], 10, 64)
}

func (s *Service) write(ctx context.Context, path string, data map[string]any) (*vault.Secret, error) {
	return s.call(ctx, func() (*vault.Secret, error) { return s.client.Logical().WriteWithContext(ctx, path, data) })
}

func (s *Service) read(ctx context.Context, path string) (*vault.Secret, error) {
	return s.call(ctx, func() (*vault.Secret, error) { return s.client.Logical().ReadWithContext(ctx, path) })
}

// call logs in when needed, runs a request, and logs in again once when
// Vault refuses the token (it may have expired).
func (s *Service) call(ctx context.Context, do func() (*vault.Secret, error)) (*vault.Secret, error) {
	for attempt := 0; ; attempt++ {
		if err := s.ensureLogin(ctx); err != nil {
			return nil, err
		}
		secret, err := do()
		if err == nil && secret == nil {
			err = &vault.ResponseError{StatusCode: http.StatusNotFound}
		}
		if err == nil {
			return secret, nil
		}
		err = s.classify(err)
		if errors.Is(err, ErrAuth) && attempt == 0 && s.method != "token" {
			s.mu.Lock()
			s.loggedIn = false
			s.mu.Unlock()
			continue
		}
		return nil, err
	}
}

// classify turns a Vault error into one of the package's errors, keeping
// Vault's message (which never holds key material) for a person to read.
func (s *Service) classify(err error) error {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		switch {
		case re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusUnauthorized:
			return fmt.Errorf("%w: %s", ErrAuth, msg)
		case re.StatusCode == http.StatusNotFound,
			re.StatusCode == http.StatusBadRequest && strings.Contains(msg, "encryption key not found"):
			return fmt.Errorf("%w: %s/%s", ErrKeyNotFound, s.cfg.TransitMount, s.cfg.KeyName)
		case re.StatusCode >= 500:
			return fmt.Errorf("%w: HTTP %d: %s", ErrUnreachable, re.StatusCode, msg)
		}
		return fmt.Errorf("vault: HTTP %d: %s", re.StatusCode, msg)
	}
	return fmt.Errorf("%w: %v", ErrUnreachable, err)
}

func (s *Service) ensureLogin(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loggedIn {
		return nil
	}
	a := s.cfg.Auth
	switch s.method {
	case "token":
		token, err := credential(a.Token, a.TokenFile)
		if err != nil {
			return fmt.Errorf("%w: token file: %v", ErrAuth, err)
		}
		s.client.SetToken(token)
	case "approle":
		secretID, err := credential(a.SecretID, a.SecretIDFile)
		if err != nil {
			return fmt.Errorf("%w: AppRole secret ID file: %v", ErrAuth, err)
		}
		if err := s.login(ctx, orDefault(a.AppRolePath, "approle"), map[string]any{"role_id": a.RoleID, "secret_id": secretID}); err != nil {
			return err
		}
	case "kubernetes":
		file := a.ServiceAccountTokenFile
		if file == "" && a.ServiceAccountToken == "" {
			file = DefaultServiceAccountTokenFile
		}
		jwt, err := credential(a.ServiceAccountToken, file)
		if err != nil {
			return fmt.Errorf("%w: service account token: %v", ErrAuth, err)
		}
		if err := s.login(ctx, orDefault(a.KubernetesPath, "kubernetes"), map[string]any{"role": a.KubernetesRole, "jwt": jwt}); err != nil {
			return err
		}
	}
	s.loggedIn = true
	return nil
}

// Logout revokes the token a login made (AppRole or Kubernetes auth), for
// callers that check settings once and would otherwise leave a token in
// Vault until its TTL ends. A given token (token auth) is not the
// Service's to revoke. Errors are ignored: the token expires anyway.
func (s *Service) Logout(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loggedIn || s.method == "token" {
		return
	}
	_ = s.client.Auth().Token().RevokeSelfWithContext(ctx, "")
	s.client.ClearToken()
	s.loggedIn = false
}

// login exchanges credentials for a token at auth/<path>/login.
func (s *Service) login(ctx context.Context, path string, creds map[string]any) error {
	s.client.ClearToken()
	secret, err := s.client.Logical().WriteWithContext(ctx, "auth/"+path+"/login", creds)
	if err != nil {
		err = s.classify(err)
		if errors.Is(err, ErrKeyNotFound) {
			// A 404 here is a missing auth mount, not a missing key.
			return fmt.Errorf("%w: no auth method mounted at auth/%s", ErrAuth, path)
		}
		if !errors.Is(err, ErrUnreachable) {
			return fmt.Errorf("%w: login at auth/%s: %v", ErrAuth, path, err)
		}
		return err
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return fmt.Errorf("%w: login at auth/%s returned no token", ErrAuth, path)
	}
	s.client.SetToken(secret.Auth.ClientToken)
	return nil
}

// credential is the file's trimmed content when a file is named, else the
// value itself.
func credential(value, file string) (string, error) {
	if file != "" {
		return readTrimmed(file)
	}
	if v := strings.TrimSpace(value); v != "" {
		return v, nil
	}
	return "", errors.New("the credential is empty")
}

func readTrimmed(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "", fmt.Errorf("%s is empty", file)
	}
	return v, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Metrics count and time the requests to Vault by operation and result.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them with reg, if not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marina_kms_vault_requests_total",
			Help: "Requests to Vault's transit engine by operation (encrypt, decrypt, status) and result (ok, unreachable, auth, key_not_found, error).",
		}, []string{"operation", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "marina_kms_vault_request_duration_seconds",
			Help:    "Latency of requests to Vault's transit engine by operation, retries included.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"operation"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency)
	}
	return m
}

func (m *Metrics) observe(op string, start time.Time, err error) {
	m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	m.requests.WithLabelValues(op, Result(err)).Inc()
}

// Result names an error's kind for metrics and conditions.
func Result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrUnreachable):
		return "unreachable"
	case errors.Is(err, ErrAuth):
		return "auth"
	case errors.Is(err, ErrKeyNotFound):
		return "key_not_found"
	}
	return "error"
}
