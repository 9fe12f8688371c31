package controller

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marina-platform/marina/internal/kubeconfig"
)

// federationScheme holds the kinds the operator writes into a control
// plane's API server.
var federationScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, apiextensionsv1.AddToScheme, admissionregistrationv1.AddToScheme, rbacv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// FederationClients keeps one client per control plane's API server, so
// that connections and discovery are reused across reconciliations. A
// client is replaced when the credentials it was made from change.
type FederationClients struct {
	mu      sync.Mutex
	clients map[types.UID]federationClient
}

type federationClient struct {
	key  [32]byte
	c    client.Client
	rest rest.Interface
}

// NewFederationClients returns an empty set of clients.
func NewFederationClients() *FederationClients {
	return &FederationClients{clients: map[types.UID]federationClient{}}
}

// Get returns the client for a control plane from its admin kubeconfig.
func (f *FederationClients) Get(uid types.UID, kubeconfigData []byte) (client.Client, rest.Interface, error) {
	key := sha256.Sum256(kubeconfigData)
	f.mu.Lock()
	defer f.mu.Unlock()
	if fc, ok := f.clients[uid]; ok && fc.key == key {
		return fc.c, fc.rest, nil
	}
	cfg, err := kubeconfig.RESTConfig(kubeconfigData)
	if err != nil {
		return nil, nil, err
	}
	cfg.Timeout = 15 * time.Second
	cfg.QPS, cfg.Burst = 20, 40
	cfg.UserAgent = FieldManager
	c, err := client.New(cfg, client.Options{Scheme: federationScheme})
	if err != nil {
		return nil, nil, fmt.Errorf("client for the federation API server: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("client for the federation API server: %w", err)
	}
	f.clients[uid] = federationClient{key: key, c: c, rest: cs.Discovery().RESTClient()}
	return c, f.clients[uid].rest, nil
}

// Forget drops a deleted control plane's client.
func (f *FederationClients) Forget(uid types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.clients, uid)
}

// Len is how many clients are kept.
func (f *FederationClients) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.clients)
}

// readyz asks an API server whether it is ready to serve.
func readyz(ctx context.Context, rc rest.Interface) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// Vault's health is EncryptionReady's business, as in the pods' readiness
	// probe: an API server serving from cached data keys is ready.
	body, err := rc.Get().AbsPath("/readyz").Param("exclude", "kms-providers").DoRaw(ctx)
	if err != nil {
		if len(body) > 0 {
			return fmt.Errorf("%w: %s", err, body)
		}
		return err
	}
	return nil
}
