package dispatch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldManager owns, in each propagation policy of a control plane, the
// list of members it holds back from: only that field, so that whoever
// wrote the policy (a PolicySet, a person) keeps the rest.
const FieldManager = "marina-dispatch"

// PolicyKinds are the engine's kinds whose policies dispatch workloads.
var PolicyKinds = []schema.GroupVersionKind{
	{Group: "policy.karmada.io", Version: "v1alpha1", Kind: "PropagationPolicy"},
	{Group: "policy.karmada.io", Version: "v1alpha1", Kind: "ClusterPropagationPolicy"},
}

// ControlPlane is how the suspender reaches one control plane.
type ControlPlane struct {
	// UID names the ControlPlane.
	UID types.UID
	// Key identifies the credentials Client and Config come from: a new
	// key starts the watch again.
	Key    [32]byte
	Client client.Client
	Config *rest.Config
	Mapper meta.RESTMapper
}

// Suspender keeps, in each control plane, every PropagationPolicy and
// ClusterPropagationPolicy holding back dispatching to the members that
// control plane is a standby for. It watches the policies, so that one
// made later (by a PolicySet, by a person) holds back within moments too.
type Suspender struct {
	mu     sync.Mutex
	planes map[types.UID]*plane
}

// plane is one control plane's policies and standby members.
type plane struct {
	cp     ControlPlane
	cache  cache.Cache
	cancel context.CancelFunc
	kick   chan struct{}

	// passing is held for a whole pass, which reads the standby members
	// under it: two passes at once (a hand-over's and the watch's) could
	// otherwise apply an older list over a newer one.
	passing sync.Mutex

	mu      sync.Mutex
	standby map[string]bool
	// informers are the policy kinds the control plane serves and that
	// are watched.
	informers map[schema.GroupVersionKind]toolscache.SharedIndexInformer
	// problems are the policies that could not be made to hold back at
	// the last pass, by name.
	problems []string
	// synced says a pass brought every policy in line once.
	synced bool
}

// Set records whether the control plane is a standby for member (it holds
// back from it) and brings its policies in line: at once and before
// returning when wait is set (a hand-over waits for it), else within
// moments. seed lists the members the control plane is a standby for as
// recorded before, for a control plane seen for the first time since the
// operator started: its policies keep holding back from them until told
// otherwise.
func (s *Suspender) Set(ctx context.Context, cp ControlPlane, member string, standby, wait bool, seed func() (map[string]bool, error)) error {
	p, err := s.plane(cp, seed)
	if err != nil {
		return err
	}
	p.mu.Lock()
	changed := p.standby[member] != standby
	if standby {
		p.standby[member] = true
	} else {
		delete(p.standby, member)
	}
	pending := len(p.problems) > 0 || !p.synced
	p.mu.Unlock()
	if !changed && !pending {
		return nil
	}
	if wait {
		return p.sync(ctx)
	}
	p.poke()
	return nil
}

// Problem says what keeps the control plane's policies from holding back,
// if anything did at the last pass.
func (s *Suspender) Problem(uid types.UID) error {
	s.mu.Lock()
	p := s.planes[uid]
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(p.problems, "; "))
}

// Forget drops member from a control plane (it was unjoined there), or the
// whole control plane when member is empty (it is gone).
func (s *Suspender) Forget(uid types.UID, member string) {
	s.mu.Lock()
	p := s.planes[uid]
	if p != nil && member == "" {
		delete(s.planes, uid)
	}
	s.mu.Unlock()
	if p == nil {
		return
	}
	if member == "" {
		p.cancel()
		return
	}
	p.mu.Lock()
	delete(p.standby, member)
	p.mu.Unlock()
	p.poke()
}

func (s *Suspender) plane(cp ControlPlane, seed func() (map[string]bool, error)) (*plane, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.planes == nil {
		s.planes = map[types.UID]*plane{}
	}
	old := s.planes[cp.UID]
	if old != nil && old.cp.Key == cp.Key {
		return old, nil
	}
	var standby map[string]bool
	switch {
	case old != nil:
		// New credentials, same control plane: what it holds back from
		// stays.
		old.mu.Lock()
		standby = maps.Clone(old.standby)
		old.mu.Unlock()
	case seed != nil:
		// Unknown seeds mean no plane yet: a plane that started from
		// nothing would let go of every standby member at its first pass.
		var err error
		if standby, err = seed(); err != nil {
			return nil, fmt.Errorf("read which members the control plane holds back from: %w", err)
		}
	}
	if standby == nil {
		standby = map[string]bool{}
	}
	c, err := cache.New(cp.Config, cache.Options{Scheme: runtime.NewScheme(), Mapper: cp.Mapper})
	if err != nil {
		return nil, fmt.Errorf("watch the control plane's propagation policies: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &plane{cp: cp, cache: c, cancel: cancel, kick: make(chan struct{}, 1), standby: standby,
		informers: map[schema.GroupVersionKind]toolscache.SharedIndexInformer{}}
	if old != nil {
		old.cancel()
	}
	s.planes[cp.UID] = p
	go func() { _ = c.Start(ctx) }()
	go p.run(ctx)
	p.poke()
	return p, nil
}

func (p *plane) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// run brings the policies in line whenever poked (a policy changed, a
// member's role did), a few changes at a time, and retries a pass that
// met a problem.
func (p *plane) run(ctx context.Context) {
	retry := time.Second
	for {
		var after <-chan time.Time
		p.mu.Lock()
		failing := len(p.problems) > 0
		p.mu.Unlock()
		if failing {
			after = time.After(retry)
			retry = min(2*retry, time.Minute)
		} else {
			retry = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-after:
		}
		// Coalesce a burst (a thousand members joining, a PolicySet of
		// hundreds of policies) into one pass.
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		_ = p.sync(ctx)
	}
}

// watchKinds starts an informer for each policy kind the control plane
// serves that is not watched yet.
func (p *plane) watchKinds(ctx context.Context) error {
	for _, gvk := range PolicyKinds {
		p.mu.Lock()
		_, ok := p.informers[gvk]
		p.mu.Unlock()
		if ok {
			continue
		}
		// A control plane without the engine's CRDs has no policies: ask
		// once per pass, rather than have an informer fail forever.
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := p.cp.Client.List(ctx, list, client.Limit(1)); err != nil {
			if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
				continue
			}
			return fmt.Errorf("list %ss: %w", gvk.Kind, err)
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		inf, err := p.cache.GetInformer(ctx, u, cache.BlockUntilSynced(false))
		if err != nil {
			return fmt.Errorf("watch %ss: %w", gvk.Kind, err)
		}
		sii, ok := inf.(toolscache.SharedIndexInformer)
		if !ok {
			return fmt.Errorf("watch %ss: informer %T", gvk.Kind, inf)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { p.poke() },
			UpdateFunc: func(_, _ any) { p.poke() },
		}); err != nil {
			return err
		}
		p.mu.Lock()
		p.informers[gvk] = sii
		p.mu.Unlock()
	}
	return nil
}

// sync makes every policy hold back from exactly the standby members.
func (p *plane) sync(ctx context.Context) error {
	p.passing.Lock()
	defer p.passing.Unlock()
	if err := p.watchKinds(ctx); err != nil {
		p.report([]string{err.Error()})
		return err
	}
	p.mu.Lock()
	want := make([]string, 0, len(p.standby))
	for m := range p.standby {
		want = append(want, m)
	}
	informers := make([]toolscache.SharedIndexInformer, 0, len(p.informers))
	for _, inf := range p.informers {
		informers = append(informers, inf)
	}
	p.mu.Unlock()
	sort.Strings(want)
	var problems []string
	for _, inf := range informers {
		if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			return ctx.Err()
		}
		for _, o := range inf.GetStore().List() {
			u, ok := o.(*unstructured.Unstructured)
			if !ok || !u.GetDeletionTimestamp().IsZero() {
				continue
			}
			if err := p.hold(ctx, u, want); err != nil {
				problems = append(problems, fmt.Sprintf("%s %s: %v", u.GetKind(), describe(u), err))
			}
		}
	}
	p.report(problems)
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	p.mu.Lock()
	p.synced = true
	p.mu.Unlock()
	return nil
}

func (p *plane) report(problems []string) {
	p.mu.Lock()
	p.problems = problems
	p.mu.Unlock()
}

// hold applies, as FieldManager, the list of members policy u holds back
// from, where it differs: without force, so that a policy whose author
// set that list itself is reported, not fought over.
func (p *plane) hold(ctx context.Context, u *unstructured.Unstructured, want []string) error {
	if all, _, _ := unstructured.NestedBool(u.Object, "spec", "suspension", "dispatching"); all {
		return nil // it holds back from every cluster already
	}
	have, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "suspension", "dispatchingOnClusters", "clusterNames")
	owned := slices.ContainsFunc(u.GetManagedFields(), func(f metav1.ManagedFieldsEntry) bool {
		return f.Manager == FieldManager && f.Operation == metav1.ManagedFieldsOperationApply
	})
	if (len(want) == 0 && !owned) || (owned && slices.Equal(sorted(have), want)) {
		return nil
	}
	apply := &unstructured.Unstructured{}
	apply.SetGroupVersionKind(u.GroupVersionKind())
	apply.SetNamespace(u.GetNamespace())
	// A policy deleted meanwhile is not made again: the engine's schema
	// requires spec.resourceSelectors, which this apply never holds.
	apply.SetName(u.GetName())
	if len(want) > 0 {
		names := make([]any, len(want))
		for i, m := range want {
			names[i] = m
		}
		if err := unstructured.SetNestedSlice(apply.Object, names, "spec", "suspension", "dispatchingOnClusters", "clusterNames"); err != nil {
			return err
		}
	}
	err := p.cp.Client.Patch(ctx, apply, client.Apply, client.FieldOwner(FieldManager))
	if apierrors.IsConflict(err) {
		// An apply without a resourceVersion conflicts only over fields.
		return fmt.Errorf("its spec.suspension.dispatchingOnClusters is set by someone else, so Marina cannot hold it back from the members this control plane is a standby for; remove that field from the policy")
	}
	return err
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func describe(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetName()
	}
	return u.GetNamespace() + "/" + u.GetName()
}
