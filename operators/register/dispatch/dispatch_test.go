package dispatch_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/internal/testenv/federation"
	"github.com/marina-platform/marina/operators/register/dispatch"
	"github.com/marina-platform/marina/operators/register/join"
)

// clock is a settable clock for one data center's Leases.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestLease plays two data centers' control planes claiming one real
// member's lease, each with its own clock: dc1's is preferred (the member
// was made there). The lease goes to dc2 only once dc1 stopped renewing
// it for its duration on dc2's clock, comes back to dc1 when it asks, only
// after dc2 held back, and goes with the unjoin.
func TestLease(t *testing.T) {
	ctrllog.SetLogger(logr.Discard())
	ctx := context.Background()
	member, err := testenv.StartWith(testenv.Options{WithoutMarinaCRDs: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = member.Stop() })
	mc, err := client.New(member.Config, client.Options{Scheme: join.Scheme, Mapper: join.RESTMapper})
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: join.Namespace}}); err != nil {
		t.Fatal(err)
	}

	const key, d = "member-uid", 30 * time.Second
	start := time.Now()
	c1, c2 := &clock{t: start}, &clock{t: start.Add(time.Hour)} // clocks that disagree
	dc1, dc2 := &dispatch.Leases{Now: c1.now}, &dispatch.Leases{Now: c2.now}
	a := dispatch.Claim{Namespace: join.Namespace, ID: dispatch.HolderID("dc1", "ns", "a"), Preferred: true, Duration: d, Labels: map[string]string{"marina.dev/managed-by": "marina"}}
	b := dispatch.Claim{Namespace: join.Namespace, ID: dispatch.HolderID("dc2", "ns", "b"), Duration: d}
	heldBack := 0
	holdBack := func(context.Context) error { heldBack++; return nil }

	claim := func(l *dispatch.Leases, c dispatch.Claim, wantHolder string, wantMine bool) dispatch.Outcome {
		t.Helper()
		out, err := l.Claim(ctx, mc, key, c, holdBack)
		if err != nil {
			t.Fatalf("%s claims: %v", c.ID, err)
		}
		if out.Holder != wantHolder || out.Mine != wantMine {
			t.Fatalf("%s claims: holder %q mine %v; want %q %v", c.ID, out.Holder, out.Mine, wantHolder, wantMine)
		}
		return out
	}

	if out := claim(dc1, a, a.ID, true); !out.Took {
		t.Errorf("dc1's first claim: %+v, want it to take the free lease", out)
	}
	claim(dc2, b, a.ID, false)
	// dc1 renews; dc2 sees it change and never takes it, however far its
	// own clock runs between dc1's renewals.
	for range 3 {
		c2.add(d / 2)
		c1.add(d / 2)
		claim(dc1, a, a.ID, true)
		claim(dc2, b, a.ID, false)
	}
	// dc1 is lost: its renewals stop. dc2 waits out the duration on its
	// own clock, then takes the lease.
	c2.add(d - time.Second)
	claim(dc2, b, a.ID, false)
	c2.add(2 * time.Second)
	if out := claim(dc2, b, b.ID, true); !out.Took || out.Previous != a.ID {
		t.Errorf("dc2's takeover: %+v, want taken from %s", out, a.ID)
	}
	// dc1 returns: it asks for the lease back and gets it once dc2 held
	// back.
	claim(dc1, a, b.ID, false)
	lease := &coordinationv1.Lease{}
	if err := mc.Get(ctx, client.ObjectKey{Namespace: join.Namespace, Name: dispatch.LeaseName}, lease); err != nil {
		t.Fatal(err)
	}
	if got := lease.Annotations[dispatch.AnnotationRequestedBy]; got != a.ID {
		t.Errorf("after dc1's return the lease's %s is %q, want %q", dispatch.AnnotationRequestedBy, got, a.ID)
	}
	claim(dc2, b, a.ID, false)
	if heldBack != 1 {
		t.Errorf("dc2 held back %d times before handing over, want 1", heldBack)
	}
	claim(dc1, a, a.ID, true)
	claim(dc2, b, a.ID, false)
	if err := mc.Get(ctx, client.ObjectKey{Namespace: join.Namespace, Name: dispatch.LeaseName}, lease); err != nil {
		t.Fatal(err)
	}
	if _, ok := lease.Annotations[dispatch.AnnotationRequestedBy]; ok || ptr.Deref(lease.Spec.LeaseTransitions, 0) != 2 {
		t.Errorf("after the hand-over: annotations %v, %d transitions; want no request left and 2 transitions", lease.Annotations, ptr.Deref(lease.Spec.LeaseTransitions, 0))
	}

	// A hand-over whose holding back fails keeps the lease where it is.
	lease.Annotations = map[string]string{dispatch.AnnotationRequestedBy: b.ID}
	if err := mc.Update(ctx, lease); err != nil {
		t.Fatal(err)
	}
	a.Preferred = false
	if _, err := dc1.Claim(ctx, mc, key, a, func(context.Context) error { return fmt.Errorf("no") }); err == nil || !strings.Contains(err.Error(), "keeping the dispatch lease") {
		t.Errorf("a hand-over that cannot hold back: %v, want it kept with a reason", err)
	}
	claim(dc2, b, a.ID, false)

	// Unjoined: a non-holder leaves the lease, the holder removes it.
	if err := dc2.Release(ctx, mc, key, b); err != nil {
		t.Fatal(err)
	}
	if err := mc.Get(ctx, client.ObjectKeyFromObject(lease), &coordinationv1.Lease{}); err != nil {
		t.Errorf("the lease after the standby's release: %v, want it in place", err)
	}
	if err := dc1.Release(ctx, mc, key, a); err != nil {
		t.Fatal(err)
	}
	if err := mc.Get(ctx, client.ObjectKeyFromObject(lease), &coordinationv1.Lease{}); !apierrors.IsNotFound(err) {
		t.Errorf("the lease after the holder's release: %v, want it gone", err)
	}
}

// TestSuspender runs a real API server with the engine's real CRDs as a
// control plane, reached with the register operator's own rights there:
// its propagation policies hold back from exactly the standby members,
// including a policy made afterwards, and let go again; a policy whose
// author set the same field is reported and left alone; one that holds
// back from every cluster already is left alone; the author's own
// server-side apply keeps its fields and sees no change of its own.
func TestSuspender(t *testing.T) {
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fed := federation.Start(ctx, t, nil)
	admin, err := client.New(fed.Config, client.Options{Mapper: join.RESTMapper})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := fed.RegistrationUser(ctx)
	if err != nil {
		t.Fatal(err)
	}
	register, err := client.New(cfg, client.Options{Scheme: join.Scheme, Mapper: join.RESTMapper})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}); err != nil {
		t.Fatal(err)
	}

	// What a PolicySet applies, as marina-sync does.
	policy := func(kind, name string, suspension map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "policy.karmada.io/v1alpha1", "kind": kind,
			"metadata": map[string]any{"name": name},
			"spec": map[string]any{
				"resourceSelectors": []any{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment"}},
				"placement":         map[string]any{"clusterAffinity": map[string]any{"clusterNames": []any{"m1", "m2"}}},
			},
		}}
		if kind == "PropagationPolicy" {
			u.SetNamespace("apps")
		}
		if suspension != nil {
			u.Object["spec"].(map[string]any)["suspension"] = suspension
		}
		return u
	}
	applyAsSync := func(u *unstructured.Unstructured) string {
		t.Helper()
		u = u.DeepCopy()
		if err := admin.Patch(ctx, u, client.Apply, client.FieldOwner("marina-sync"), client.ForceOwnership); err != nil {
			t.Fatal(err)
		}
		return u.GetResourceVersion()
	}
	pp := policy("PropagationPolicy", "web", nil)
	cpp := policy("ClusterPropagationPolicy", "baseline", nil)
	applyAsSync(pp)
	applyAsSync(cpp)

	holds := func(u *unstructured.Unstructured) []string {
		t.Helper()
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(u.GroupVersionKind())
		if err := admin.Get(ctx, client.ObjectKeyFromObject(u), live); err != nil {
			t.Fatal(err)
		}
		names, _, _ := unstructured.NestedStringSlice(live.Object, "spec", "suspension", "dispatchingOnClusters", "clusterNames")
		return names
	}
	waitHolds := func(u *unstructured.Unstructured, want ...string) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			return slices.Equal(holds(u), want), nil
		}); err != nil {
			t.Fatalf("%s %s holds back from %v, want %v", u.GetKind(), u.GetName(), holds(u), want)
		}
	}

	var s dispatch.Suspender
	cp := dispatch.ControlPlane{UID: types.UID("cp-1"), Client: register, Config: cfg, Mapper: join.RESTMapper}
	// Standby for m2: done when Set returns, as a hand-over needs.
	if err := s.Set(ctx, cp, "m2", true, true, nil); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*unstructured.Unstructured{pp, cpp} {
		if got := holds(u); !slices.Equal(got, []string{"m2"}) {
			t.Errorf("%s %s holds back from %v right after Set, want [m2]", u.GetKind(), u.GetName(), got)
		}
	}
	if err := s.Set(ctx, cp, "m1", true, false, nil); err != nil {
		t.Fatal(err)
	}
	waitHolds(pp, "m1", "m2")

	// The author applies its policy again, unchanged: nothing moves, and
	// Marina's field stays.
	rv := func(u *unstructured.Unstructured) string {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(u.GroupVersionKind())
		if err := admin.Get(ctx, client.ObjectKeyFromObject(u), live); err != nil {
			t.Fatal(err)
		}
		return live.GetResourceVersion()
	}
	before := rv(pp)
	if after := applyAsSync(pp); after != before {
		t.Errorf("the author's unchanged apply wrote the policy (%s → %s): it would see its own policy as drifted", before, after)
	}
	waitHolds(pp, "m1", "m2")

	// A policy made later holds back too.
	late := policy("PropagationPolicy", "late", nil)
	applyAsSync(late)
	waitHolds(late, "m1", "m2")

	// One whose author holds back from clusters itself is reported, and
	// keeps the author's list; one that holds back from all is left.
	own := policy("ClusterPropagationPolicy", "own-list", map[string]any{"dispatchingOnClusters": map[string]any{"clusterNames": []any{"m9"}}})
	all := policy("ClusterPropagationPolicy", "all", map[string]any{"dispatching": true})
	applyAsSync(own)
	applyAsSync(all)
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		err := s.Problem(cp.UID)
		return err != nil && strings.Contains(err.Error(), "own-list") && strings.Contains(err.Error(), "set by someone else"), nil
	}); err != nil {
		t.Errorf("a policy that sets the field itself: problem %v, want it named", s.Problem(cp.UID))
	}
	if got := holds(own); !slices.Equal(got, []string{"m9"}) {
		t.Errorf("the author's own list became %v, want [m9]", got)
	}
	if got := holds(all); len(got) != 0 {
		t.Errorf("a policy that holds back from all got a list %v", got)
	}
	if err := admin.Delete(ctx, own); err != nil {
		t.Fatal(err)
	}

	// Dispatching again: the field goes, the author's fields stay.
	for _, m := range []string{"m1", "m2"} {
		if err := s.Set(ctx, cp, m, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitHolds(pp)
	waitHolds(cpp)
	waitHolds(late)
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return s.Problem(cp.UID) == nil, nil
	}); err != nil {
		t.Errorf("problem after the conflicting policy went: %v", s.Problem(cp.UID))
	}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(pp.GroupVersionKind())
	if err := admin.Get(ctx, client.ObjectKeyFromObject(pp), live); err != nil {
		t.Fatal(err)
	}
	if sel, _, _ := unstructured.NestedSlice(live.Object, "spec", "resourceSelectors"); len(sel) != 1 {
		t.Errorf("the author's resourceSelectors: %v", sel)
	}

	// Seeded from status after a restart: holds back from the seeded
	// members without being told again.
	var restarted dispatch.Suspender
	cp2 := cp
	cp2.UID = "cp-1-again"
	if err := restarted.Set(ctx, cp2, "m3", false, true, func() (map[string]bool, error) { return map[string]bool{"m1": true}, nil }); err != nil {
		t.Fatal(err)
	}
	waitHolds(pp, "m1")
	// Seeds that cannot be read make no plane, rather than one that
	// would let go of every standby member.
	var blind dispatch.Suspender
	cp3 := cp
	cp3.UID = "cp-1-blind"
	if err := blind.Set(ctx, cp3, "m3", false, true, func() (map[string]bool, error) { return nil, fmt.Errorf("cache not ready") }); err == nil {
		t.Error("Set with seeds that cannot be read: no error")
	}
	waitHolds(pp, "m1")
	s.Forget(cp.UID, "")
	restarted.Forget(cp2.UID, "")
}
