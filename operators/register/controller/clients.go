package controller

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marina-platform/marina/internal/kubeconfig"
	"github.com/marina-platform/marina/operators/register/join"
)

// clients keeps one client per member and per control plane, so that
// connections and discovery are reused across passes; a client is made
// again when the kubeconfig it came from changes.
type clients struct {
	mu sync.Mutex
	m  map[string]clientEntry
}

type clientEntry struct {
	key [32]byte
	c   client.Client
	// discovery reads /version for the probe.
	discovery *discovery.DiscoveryClient
	config    *rest.Config
}

func newClients() *clients { return &clients{m: map[string]clientEntry{}} }

// get returns the client for id made from cfg, whose content key
// identifies.
func (cc *clients) get(id string, key [32]byte, cfg *rest.Config) (clientEntry, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if e, ok := cc.m[id]; ok && e.key == key {
		return e, nil
	}
	// One HTTP client (one connection) for both, and a fixed REST
	// mapping: with thousands of members, a discovery cache and a
	// transport each would be most of the operator's memory.
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return clientEntry{}, err
	}
	c, err := client.New(cfg, client.Options{Scheme: join.Scheme, Mapper: join.RESTMapper, HTTPClient: hc})
	if err != nil {
		return clientEntry{}, err
	}
	d, err := discovery.NewDiscoveryClientForConfigAndClient(cfg, hc)
	if err != nil {
		return clientEntry{}, err
	}
	e := clientEntry{key: key, c: c, discovery: d, config: cfg}
	cc.m[id] = e
	return e, nil
}

// fromKubeconfig is get for a kubeconfig's bytes.
func (cc *clients) fromKubeconfig(id string, data []byte) (clientEntry, error) {
	key := sha256.Sum256(data)
	cc.mu.Lock()
	e, ok := cc.m[id]
	cc.mu.Unlock()
	if ok && e.key == key {
		return e, nil
	}
	cfg, err := kubeconfig.RESTConfig(data)
	if err != nil {
		return clientEntry{}, fmt.Errorf("the register operator's kubeconfig of the control plane: %w", err)
	}
	cfg.Timeout = 15 * time.Second
	cfg.QPS, cfg.Burst = 20, 40
	cfg.UserAgent = FieldManager
	return cc.get(id, key, cfg)
}

// lookup returns the client kept for id, whatever it was made from.
func (cc *clients) lookup(id string) (clientEntry, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e, ok := cc.m[id]
	return e, ok
}

func (cc *clients) forget(id string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	delete(cc.m, id)
}
