package controller

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/kubeconfig"
)

// targets keeps one client per control plane, made again when the
// kubeconfig it came from changes, so that connections and the REST
// mapping (discovery) are reused across passes.
type targets struct {
	mu sync.Mutex
	m  map[string]target
}

type target struct {
	key [32]byte
	c   client.Client
	// watch holds informers of the objects PolicySets applied there, and
	// stop ends them.
	watch *watch
	// memo is what was applied there (see memo).
	memo *memo
}

// memo remembers, per PolicySet and object, the content last applied to
// one control plane and the resourceVersion the apply left. An object whose
// content did not change and whose watched resourceVersion is still that
// one is in place: it is not sent again. So a pass over an unchanged set
// costs no request, and a change of one object costs one per control
// plane. The watch is what tells a change by someone else.
type memo struct {
	mu sync.Mutex
	m  map[string]memoEntry
}

type memoEntry struct{ hash, rv string }

func (m *memo) get(key string) (memoEntry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.m[key]
	return e, ok
}

func (m *memo) put(key string, e memoEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[key] = e
}

func (m *memo) drop(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, key)
}

// dropPrefix forgets every entry whose key starts with prefix: a PolicySet
// that is gone.
func (m *memo) dropPrefix(prefix string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.m {
		if strings.HasPrefix(k, prefix) {
			delete(m.m, k)
		}
	}
}

// forgetPolicySet drops a deleted PolicySet's memo entries (keys prefix)
// in every control plane.
func (t *targets) forgetPolicySet(prefix string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tg := range t.m {
		tg.memo.dropPrefix(prefix)
	}
}

func newTargets() *targets { return &targets{m: map[string]target{}} }

// notReady says why a ControlPlane cannot take objects yet, or "".
func notReady(cp *marinav1alpha1.ControlPlane) string {
	switch {
	case !cp.DeletionTimestamp.IsZero():
		return "it is being deleted"
	case !meta.IsStatusConditionTrue(cp.Status.Conditions, marinav1alpha1.ConditionAPIServerReady):
		return "its API server is not Ready"
	case cp.Status.SyncKubeconfigSecretRef == nil && cp.Spec.Suspend:
		// A ControlPlane suspended before its controlplane operator knew
		// of the sync operator's own user gets that user only once it
		// is resumed.
		return "it has no kubeconfig for the sync operator (status.syncKubeconfigSecretRef) and spec.suspend is true: the controlplane operator publishes one once it is resumed"
	case cp.Status.SyncKubeconfigSecretRef == nil:
		return "it has no kubeconfig for the sync operator yet (status.syncKubeconfigSecretRef): the controlplane operator publishes one once its API server serves; if its conditions say it is Ready and none comes, that operator predates marina-sync's own user: upgrade it"
	}
	return ""
}

// targetClient is the client (and watch and memo) of a ControlPlane's
// federation API server, from the sync operator's own kubeconfig Secret
// (package policysync says what that user may do there).
func (r *Reconciler) targetClient(ctx context.Context, cp *marinav1alpha1.ControlPlane) (target, error) {
	ref := cp.Status.SyncKubeconfigSecretRef
	s := &corev1.Secret{}
	if err := r.secrets.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: ref.Name}, s); err != nil {
		return target{}, fmt.Errorf("read the sync kubeconfig Secret %s: %w", ref.Name, err)
	}
	data := s.Data[ref.Key]
	if len(data) == 0 {
		return target{}, fmt.Errorf("the sync kubeconfig Secret %s has no key %q", ref.Name, ref.Key)
	}
	key := sha256.Sum256(data)
	id := cp.Namespace + "/" + cp.Name
	r.targets.mu.Lock()
	defer r.targets.mu.Unlock()
	if t, ok := r.targets.m[id]; ok && t.key == key {
		return t, nil
	}
	cfg, err := kubeconfig.RESTConfig(data)
	if err != nil {
		return target{}, fmt.Errorf("the sync kubeconfig Secret %s: %w", ref.Name, err)
	}
	cfg.Timeout = 15 * time.Second
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = FieldManager
	c, mapper, err := newClient(cfg)
	if err != nil {
		return target{}, err
	}
	w, err := r.newWatch(cfg, mapper)
	if err != nil {
		return target{}, err
	}
	if old, ok := r.targets.m[id]; ok {
		old.watch.stop()
	}
	t := target{key: key, c: c, watch: w, memo: &memo{m: map[string]memoEntry{}}}
	r.targets.m[id] = t
	return t, nil
}

// forget drops a control plane's client and stops its watches.
func (r *Reconciler) forget(namespace, name string) {
	r.targets.mu.Lock()
	defer r.targets.mu.Unlock()
	if t, ok := r.targets.m[namespace+"/"+name]; ok {
		t.watch.stop()
		delete(r.targets.m, namespace+"/"+name)
	}
}

// newClient is a client of unstructured objects with a REST mapping that
// discovers a kind when first asked for it, so a CRD that a PolicySet (or
// the engine's upgrade) installs is found on a later pass.
func newClient(cfg *rest.Config) (client.Client, meta.RESTMapper, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return nil, nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: runtime.NewScheme(), Mapper: mapper, HTTPClient: hc})
	return c, mapper, err
}

// targetStatus finds or adds a target's status entry.
func targetStatus(ps *marinav1alpha1.PolicySet, name string) *marinav1alpha1.PolicySetTargetStatus {
	for i := range ps.Status.Targets {
		if ps.Status.Targets[i].Name == name {
			return &ps.Status.Targets[i]
		}
	}
	ps.Status.Targets = append(ps.Status.Targets, marinav1alpha1.PolicySetTargetStatus{Name: name})
	return &ps.Status.Targets[len(ps.Status.Targets)-1]
}

func setTargetCondition(t *marinav1alpha1.PolicySetTargetStatus, typ string, status metav1.ConditionStatus, reason, msg string, generation int64) {
	meta.SetStatusCondition(&t.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: generation})
}
