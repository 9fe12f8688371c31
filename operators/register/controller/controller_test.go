package controller_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/localenv"
	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/register/controller"
	"github.com/marina-platform/marina/operators/register/dispatch"
	"github.com/marina-platform/marina/operators/register/join"
)

// Three real API servers: the management cluster (Marina's and Cluster
// API's CRDs, the operator's manager), a member running kube-controller-
// manager's token controller, and a control plane serving the engine's
// Cluster kind (Marina's stand-in CRD).
var (
	mgmt, member, federation *testenv.Env
	k8s                      client.Client
	memberKubeconfig         []byte
	federationKubeconfig     []byte
)

const ns = "members"

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "marina-register-test-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)

	if member, err = testenv.Start(); err != nil {
		return 1, err
	}
	defer func() { _ = member.Stop() }()
	if err := os.Mkdir(filepath.Join(dir, "member"), 0o755); err != nil {
		return 1, err
	}
	stopKCM, err := member.StartControllerManager(filepath.Join(dir, "member"), "serviceaccount-token", "serviceaccount", "namespace", "garbagecollector")
	if err != nil {
		return 1, err
	}
	defer func() { _ = stopKCM() }()
	if memberKubeconfig, err = kubeconfigOf(member, filepath.Join(dir, "member")); err != nil {
		return 1, err
	}

	if federation, err = testenv.Start(); err != nil {
		return 1, err
	}
	defer func() { _ = federation.Stop() }()
	root, err := testenv.RepoRoot()
	if err != nil {
		return 1, err
	}
	if err := federation.InstallCRDs([]string{filepath.Join(root, "operators", "controlplane", "component", "crds", "standin-cluster.yaml")}); err != nil {
		return 1, err
	}
	if _, federationKubeconfig, err = federation.RegistrationUser(ctx); err != nil {
		return 1, err
	}

	if mgmt, err = testenv.Start(); err != nil {
		return 1, err
	}
	defer func() { _ = mgmt.Stop() }()
	k8s = mgmt.Client
	capi, err := localenv.ClusterAPICRDs(ctx)
	if err != nil {
		return 1, err
	}
	if err := mgmt.InstallCRDs([]string{filepath.Join(capi, "cluster.x-k8s.io_clusters.yaml")}); err != nil {
		return 1, err
	}
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return 1, err
	}

	opts := ctrl.Options{Scheme: mgmt.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"}
	controller.ManagerOptions(&opts)
	mgr, err := ctrl.NewManager(mgmt.Config, opts)
	if err != nil {
		return 1, err
	}
	r := &controller.Reconciler{
		Client:        mgr.GetClient(),
		Recorder:      mgr.GetEventRecorder("marina-register"),
		DataCenter:    "dc1",
		ProbeInterval: 2 * time.Second,
		RetryAfter:    500 * time.Millisecond,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return 1, err
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() { cancel(); <-done }()
	return m.Run(), nil
}

func kubeconfigOf(e *testenv.Env, dir string) ([]byte, error) {
	path, err := e.KubeconfigFile(dir)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// controlPlane makes a ControlPlane whose status says its API server
// serves, with the register operator's kubeconfig of the federation test
// API server (its user has what a Marina control plane grants it): the
// controlplane operator's part, which does not run here.
func controlPlane(t *testing.T, name string) *marinav1alpha1.ControlPlane {
	t.Helper()
	ctx := context.Background()
	cp := testenv.ControlPlane(ns, name, "dc1")
	if err := k8s.Create(ctx, cp); err != nil {
		t.Fatal(err)
	}
	secret(t, name+"-registration-kubeconfig", "kubeconfig", federationKubeconfig)
	cp.Status.RegistrationKubeconfigSecretRef = &marinav1alpha1.SecretKeyReference{Name: name + "-registration-kubeconfig", Key: "kubeconfig"}
	meta.SetStatusCondition(&cp.Status.Conditions, metav1.Condition{Type: marinav1alpha1.ConditionAPIServerReady, Status: metav1.ConditionTrue, Reason: "Succeeded"})
	meta.SetStatusCondition(&cp.Status.Conditions, metav1.Condition{Type: marinav1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Succeeded"})
	if err := k8s.Status().Update(ctx, cp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), cp) })
	return cp
}

// setAPIServerReady plays the controlplane operator reporting whether the
// control plane's API server serves.
func setAPIServerReady(t *testing.T, name string, status metav1.ConditionStatus) {
	t.Helper()
	ctx := context.Background()
	cp := &marinav1alpha1.ControlPlane{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cp); err != nil {
		t.Fatal(err)
	}
	meta.SetStatusCondition(&cp.Status.Conditions, metav1.Condition{Type: marinav1alpha1.ConditionAPIServerReady, Status: status, Reason: "Test"})
	if err := k8s.Status().Update(ctx, cp); err != nil {
		t.Fatal(err)
	}
}

func secret(t *testing.T, name, key string, data []byte) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{key: data}}
	if err := k8s.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), s) })
	return s
}

func memberCluster(t *testing.T, name string, spec marinav1alpha1.MemberClusterSpec) *marinav1alpha1.MemberCluster {
	t.Helper()
	mc := &marinav1alpha1.MemberCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	if err := k8s.Create(context.Background(), mc); err != nil {
		t.Fatal(err)
	}
	// A test that failed half-way leaves no join for the next one.
	t.Cleanup(func() {
		if err := k8s.Delete(context.Background(), mc); err == nil {
			waitGone(t, mc)
		}
	})
	return mc
}

func cps(names ...string) []marinav1alpha1.ControlPlaneReference {
	var out []marinav1alpha1.ControlPlaneReference
	for _, n := range names {
		out = append(out, marinav1alpha1.ControlPlaneReference{Name: n})
	}
	return out
}

// waitFor polls the MemberCluster until cond holds.
func waitFor(t *testing.T, mc *marinav1alpha1.MemberCluster, what string, cond func(*marinav1alpha1.MemberCluster) bool) *marinav1alpha1.MemberCluster {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	got := &marinav1alpha1.MemberCluster{}
	for time.Now().Before(deadline) {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(mc), got); err == nil && cond(got) {
			return got
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("MemberCluster %s: %s did not happen; status: %s", mc.Name, what, describe(got))
	return nil
}

func describe(mc *marinav1alpha1.MemberCluster) string {
	var b strings.Builder
	for _, c := range mc.Status.Conditions {
		fmt.Fprintf(&b, "[%s=%s %s: %s] ", c.Type, c.Status, c.Reason, c.Message)
	}
	for _, st := range mc.Status.ControlPlanes {
		for _, c := range st.Conditions {
			fmt.Fprintf(&b, "[%s/%s=%s %s: %s] ", st.Name, c.Type, c.Status, c.Reason, c.Message)
		}
	}
	return b.String()
}

func condition(mc *marinav1alpha1.MemberCluster, typ string, status metav1.ConditionStatus, reason string) bool {
	c := meta.FindStatusCondition(mc.Status.Conditions, typ)
	return c != nil && c.Status == status && (reason == "" || c.Reason == reason)
}

func cpCondition(mc *marinav1alpha1.MemberCluster, cp, typ string, status metav1.ConditionStatus, reason string) bool {
	for _, st := range mc.Status.ControlPlanes {
		if st.Name == cp {
			c := meta.FindStatusCondition(st.Conditions, typ)
			return c != nil && c.Status == status && (reason == "" || c.Reason == reason)
		}
	}
	return false
}

func waitEvent(t *testing.T, mc *marinav1alpha1.MemberCluster, eventType, reason string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		events := &eventsv1.EventList{}
		if err := k8s.List(context.Background(), events, client.InNamespace(ns)); err == nil {
			for _, e := range events.Items {
				if e.Regarding.Name == mc.Name && e.Regarding.Kind == "MemberCluster" && e.Type == eventType && e.Reason == reason && e.Note != "" {
					return
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("no %s Event %s about MemberCluster %s", eventType, reason, mc.Name)
}

func federationCluster(t *testing.T, name string) (*unstructured.Unstructured, error) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(join.ClusterGVK)
	err := federation.Client.Get(context.Background(), client.ObjectKey{Name: name}, u)
	return u, err
}

func memberTokens(t *testing.T, cluster string) int {
	t.Helper()
	list := &corev1.SecretList{}
	if err := member.Client.List(context.Background(), list, client.InNamespace(join.Namespace),
		client.MatchingLabels{marinav1alpha1.LabelMemberCluster: cluster}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return len(list.Items)
}

// memberLeaseHolder is the holder of the member's dispatch lease; empty
// when there is none.
func memberLeaseHolder(t *testing.T) string {
	t.Helper()
	l := &coordinationv1.Lease{}
	err := member.Client.Get(context.Background(), client.ObjectKey{Namespace: join.Namespace, Name: dispatch.LeaseName}, l)
	if apierrors.IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

func waitGone(t *testing.T, mc *marinav1alpha1.MemberCluster) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(mc), &marinav1alpha1.MemberCluster{})
		if apierrors.IsNotFound(err) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("MemberCluster %s was not removed", mc.Name)
}

// TestKubeconfigMember joins a member from a kubeconfig Secret, reports it
// Ready with its version, unjoins it from a control plane removed from its
// list, and leaves nothing behind on deletion.
func TestKubeconfigMember(t *testing.T) {
	ctx := context.Background()
	controlPlane(t, "prod")
	secret(t, "edge-a-kubeconfig", "kubeconfig", memberKubeconfig)
	mc := memberCluster(t, "edge-a", marinav1alpha1.MemberClusterSpec{
		KubeconfigSecretRef: &marinav1alpha1.SecretKeyReference{Name: "edge-a-kubeconfig"},
		ControlPlanes:       cps("prod"),
		ClusterProperties:   marinav1alpha1.ClusterProperties{Region: "eu-west"},
	})
	got := waitFor(t, mc, "Ready", func(m *marinav1alpha1.MemberCluster) bool {
		return condition(m, marinav1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})
	if !cpCondition(got, "prod", marinav1alpha1.ConditionJoined, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded) ||
		got.Status.JoinedControlPlanes != 1 || !strings.HasPrefix(got.Status.KubernetesVersion, "v1.") || got.Status.LastProbeTime == nil {
		t.Errorf("status after join: %+v", got.Status)
	}
	if got.Status.ObservedGeneration != got.Generation {
		t.Errorf("observedGeneration %d, generation %d", got.Status.ObservedGeneration, got.Generation)
	}
	waitEvent(t, mc, corev1.EventTypeNormal, "Joined")
	// Its only control plane dispatches to it, holding its lease.
	got = waitFor(t, mc, "dispatched to by prod", func(m *marinav1alpha1.MemberCluster) bool {
		return cpCondition(m, "prod", marinav1alpha1.ConditionDispatching, metav1.ConditionTrue, marinav1alpha1.ReasonDispatcher)
	})
	if want := dispatch.HolderID("dc1", ns, "prod"); got.Status.Dispatcher != want || memberLeaseHolder(t) != want {
		t.Errorf("dispatcher %q, the member's lease held by %q; want %q", got.Status.Dispatcher, memberLeaseHolder(t), want)
	}
	waitEvent(t, mc, corev1.EventTypeNormal, "Dispatching")

	// Its control plane does not answer for a while: still joined, but
	// whether its engine dispatches is not known; then it is back.
	setAPIServerReady(t, "prod", metav1.ConditionFalse)
	waitFor(t, mc, "Dispatching Unknown while prod does not serve", func(m *marinav1alpha1.MemberCluster) bool {
		return cpCondition(m, "prod", marinav1alpha1.ConditionJoined, metav1.ConditionTrue, "") &&
			cpCondition(m, "prod", marinav1alpha1.ConditionDispatching, metav1.ConditionUnknown, marinav1alpha1.ReasonControlPlaneNotReady)
	})
	setAPIServerReady(t, "prod", metav1.ConditionTrue)
	// It held the lease throughout: a renewal, not a hand-over, so it
	// never stands by on the way back.
	var seen []string
	waitFor(t, mc, "dispatched to by prod again", func(m *marinav1alpha1.MemberCluster) bool {
		for _, st := range m.Status.ControlPlanes {
			if c := meta.FindStatusCondition(st.Conditions, marinav1alpha1.ConditionDispatching); c != nil && (len(seen) == 0 || seen[len(seen)-1] != c.Reason) {
				seen = append(seen, c.Reason)
			}
		}
		return cpCondition(m, "prod", marinav1alpha1.ConditionDispatching, metav1.ConditionTrue, marinav1alpha1.ReasonDispatcher)
	})
	if slices.Contains(seen, marinav1alpha1.ReasonStandby) {
		t.Errorf("Dispatching went %v on the way back: the holder stood by as if handed the lease", seen)
	}

	cl, err := federationCluster(t, "edge-a")
	if err != nil {
		t.Fatalf("the engine's Cluster: %v", err)
	}
	if region, _, _ := unstructured.NestedString(cl.Object, "spec", "region"); region != "eu-west" {
		t.Errorf("Cluster spec.region %q", region)
	}

	// A property changed in the spec reaches the Cluster.
	patchSpec(t, got, func(m *marinav1alpha1.MemberCluster) { m.Spec.Region = "eu-north" })
	eventually(t, "the new region on the Cluster", func() bool {
		cl, err := federationCluster(t, "edge-a")
		region, _, _ := unstructured.NestedString(cl.Object, "spec", "region")
		return err == nil && region == "eu-north"
	})

	// Taken out of the control plane's list: unjoined from it.
	got = waitFor(t, mc, "fresh read", func(*marinav1alpha1.MemberCluster) bool { return true })
	patchSpec(t, got, func(m *marinav1alpha1.MemberCluster) { m.Spec.ControlPlanes = nil })
	waitFor(t, mc, "unjoined", func(m *marinav1alpha1.MemberCluster) bool {
		return len(m.Status.ControlPlanes) == 0 && m.Status.JoinedControlPlanes == 0
	})
	if _, err := federationCluster(t, "edge-a"); !apierrors.IsNotFound(err) {
		t.Errorf("the Cluster after unjoin: %v, want NotFound", err)
	}
	if n := memberTokens(t, "edge-a"); n != 0 {
		t.Errorf("%d of Marina's token Secrets left in the member after unjoin", n)
	}
	if h := memberLeaseHolder(t); h != "" {
		t.Errorf("the member's dispatch lease after unjoin: held by %q, want it gone", h)
	}

	// Joined again, then deleted: both sides are cleaned before it goes.
	got = waitFor(t, mc, "fresh read", func(*marinav1alpha1.MemberCluster) bool { return true })
	patchSpec(t, got, func(m *marinav1alpha1.MemberCluster) { m.Spec.ControlPlanes = cps("prod") })
	waitFor(t, mc, "Ready again", func(m *marinav1alpha1.MemberCluster) bool {
		return condition(m, marinav1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})
	if err := k8s.Delete(ctx, mc); err != nil {
		t.Fatal(err)
	}
	waitGone(t, mc)
	if _, err := federationCluster(t, "edge-a"); !apierrors.IsNotFound(err) {
		t.Errorf("the Cluster after deletion: %v, want NotFound", err)
	}
	if n := memberTokens(t, "edge-a"); n != 0 {
		t.Errorf("%d of Marina's token Secrets left in the member after deletion", n)
	}
	// The kubeconfig Secret is the user's: never touched.
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "edge-a-kubeconfig"}, &corev1.Secret{}); err != nil {
		t.Errorf("the user's kubeconfig Secret: %v", err)
	}
}

// TestBadInput reports each problem a person must fix with a condition
// and a Warning Event, deletes nothing, and recovers once it is fixed.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	controlPlane(t, "staging")

	// A Secret that does not exist yet.
	mc := memberCluster(t, "edge-b", marinav1alpha1.MemberClusterSpec{
		KubeconfigSecretRef: &marinav1alpha1.SecretKeyReference{Name: "edge-b-kubeconfig"},
		ControlPlanes:       cps("staging", "nowhere"),
	})
	waitFor(t, mc, "SecretNotFound", func(m *marinav1alpha1.MemberCluster) bool {
		return condition(m, marinav1alpha1.ConditionReachable, metav1.ConditionFalse, marinav1alpha1.ReasonSecretNotFound)
	})
	waitEvent(t, mc, corev1.EventTypeWarning, marinav1alpha1.ReasonSecretNotFound)

	// A Secret with something that is no kubeconfig.
	s := secret(t, "edge-b-kubeconfig", "kubeconfig", []byte("this is not a kubeconfig"))
	waitFor(t, mc, "InvalidSecret", func(m *marinav1alpha1.MemberCluster) bool {
		return condition(m, marinav1alpha1.ConditionReachable, metav1.ConditionFalse, marinav1alpha1.ReasonInvalidSecret)
	})

	// A kubeconfig whose API server does not answer.
	unreachable := regexp.MustCompile(`server: \S+`).ReplaceAllString(string(memberKubeconfig), "server: https://127.0.0.1:1")
	s.Data["kubeconfig"] = []byte(unreachable)
	if err := k8s.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	waitFor(t, mc, "ClusterUnreachable", func(m *marinav1alpha1.MemberCluster) bool {
		return condition(m, marinav1alpha1.ConditionReachable, metav1.ConditionFalse, marinav1alpha1.ReasonClusterUnreachable) &&
			condition(m, marinav1alpha1.ConditionReady, metav1.ConditionFalse, marinav1alpha1.ReasonClusterUnreachable)
	})
	waitEvent(t, mc, corev1.EventTypeWarning, marinav1alpha1.ReasonClusterUnreachable)

	// Fixed: it joins the control plane that exists; the one that does not
	// is reported.
	s.Data["kubeconfig"] = memberKubeconfig
	if err := k8s.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	got := waitFor(t, mc, "joined to staging, nowhere reported", func(m *marinav1alpha1.MemberCluster) bool {
		return cpCondition(m, "staging", marinav1alpha1.ConditionJoined, metav1.ConditionTrue, "") &&
			cpCondition(m, "nowhere", marinav1alpha1.ConditionJoined, metav1.ConditionFalse, marinav1alpha1.ReasonControlPlaneNotFound)
	})
	if condition(got, marinav1alpha1.ConditionReady, metav1.ConditionTrue, "") {
		t.Error("Ready while a listed control plane does not exist")
	}

	// The same member under a second name is a conflict, and the first
	// join is untouched.
	secret(t, "edge-b-again-kubeconfig", "kubeconfig", memberKubeconfig)
	again := memberCluster(t, "edge-b-again", marinav1alpha1.MemberClusterSpec{
		KubeconfigSecretRef: &marinav1alpha1.SecretKeyReference{Name: "edge-b-again-kubeconfig"},
		ControlPlanes:       cps("staging"),
	})
	waitFor(t, again, "Conflict", func(m *marinav1alpha1.MemberCluster) bool {
		return cpCondition(m, "staging", marinav1alpha1.ConditionJoined, metav1.ConditionFalse, marinav1alpha1.ReasonConflict)
	})
	waitEvent(t, again, corev1.EventTypeWarning, marinav1alpha1.ReasonConflict)
	if err := k8s.Delete(ctx, again); err != nil {
		t.Fatal(err)
	}
	waitGone(t, again)
	if _, err := federationCluster(t, "edge-b"); err != nil {
		t.Errorf("the first join's Cluster after the conflicting MemberCluster went: %v", err)
	}

	if err := k8s.Delete(ctx, mc); err != nil {
		t.Fatal(err)
	}
	waitGone(t, mc)
}

// TestClusterAPIMember waits for a Cluster API Cluster to be initialized
// and unpaused, joins it, and unjoins it when the Cluster is deleted.
func TestClusterAPIMember(t *testing.T) {
	ctx := context.Background()
	controlPlane(t, "capi-prod")
	c := &unstructured.Unstructured{}
	c.SetAPIVersion("cluster.x-k8s.io/v1beta2")
	c.SetKind("Cluster")
	c.SetNamespace(ns)
	c.SetName("edge-c")
	_ = unstructured.SetNestedField(c.Object, true, "spec", "paused")
	if err := k8s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	mc := memberCluster(t, "edge-c", marinav1alpha1.MemberClusterSpec{
		ClusterRef:    &marinav1alpha1.ClusterReference{Name: "edge-c"},
		ControlPlanes: cps("capi-prod"),
	})
	waitFor(t, mc, "Paused", func(m *marinav1alpha1.MemberCluster) bool {
		return condition(m, marinav1alpha1.ConditionReachable, metav1.ConditionFalse, marinav1alpha1.ReasonPaused)
	})

	if err := k8s.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
		t.Fatal(err)
	}
	_ = unstructured.SetNestedField(c.Object, false, "spec", "paused")
	if err := k8s.Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	waitFor(t, mc, "WaitingForClusterAPI", func(m *marinav1alpha1.MemberCluster) bool {
		return condition(m, marinav1alpha1.ConditionReachable, metav1.ConditionFalse, marinav1alpha1.ReasonWaitingForClusterAPI)
	})

	// What an infrastructure provider does once the cluster answers.
	secret(t, "edge-c-kubeconfig", "value", memberKubeconfig)
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
		t.Fatal(err)
	}
	_ = unstructured.SetNestedField(c.Object, true, "status", "initialization", "controlPlaneInitialized")
	if err := k8s.Status().Update(ctx, c); err != nil {
		t.Fatal(err)
	}
	waitFor(t, mc, "Ready", func(m *marinav1alpha1.MemberCluster) bool {
		return condition(m, marinav1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})

	// The Cluster goes: the member is unjoined on both sides.
	if err := k8s.Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	waitFor(t, mc, "unjoined", func(m *marinav1alpha1.MemberCluster) bool {
		return len(m.Status.ControlPlanes) == 0
	})
	if _, err := federationCluster(t, "edge-c"); !apierrors.IsNotFound(err) {
		t.Errorf("the engine's Cluster after its Cluster API Cluster went: %v, want NotFound", err)
	}
	if n := memberTokens(t, "edge-c"); n != 0 {
		t.Errorf("%d of Marina's token Secrets left in the member", n)
	}
	if err := k8s.Delete(ctx, mc); err != nil {
		t.Fatal(err)
	}
	waitGone(t, mc)
}

func patchSpec(t *testing.T, mc *marinav1alpha1.MemberCluster, mutate func(*marinav1alpha1.MemberCluster)) {
	t.Helper()
	before := mc.DeepCopy()
	mutate(mc)
	if err := k8s.Patch(context.Background(), mc, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not happen", what)
}

// TestControlPlaneGoes removes the member's tokens for a control plane
// that was deleted while the member was joined to it, and says so.
func TestControlPlaneGoes(t *testing.T) {
	ctx := context.Background()
	cp := controlPlane(t, "short-lived")
	secret(t, "edge-d-kubeconfig", "kubeconfig", memberKubeconfig)
	mc := memberCluster(t, "edge-d", marinav1alpha1.MemberClusterSpec{
		KubeconfigSecretRef: &marinav1alpha1.SecretKeyReference{Name: "edge-d-kubeconfig"},
		ControlPlanes:       cps("short-lived"),
	})
	waitFor(t, mc, "Ready", func(m *marinav1alpha1.MemberCluster) bool {
		return condition(m, marinav1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})
	if n := memberTokens(t, "edge-d"); n != 2 {
		t.Fatalf("%d token Secrets in the member, want 2", n)
	}
	if err := k8s.Delete(ctx, cp); err != nil {
		t.Fatal(err)
	}
	waitFor(t, mc, "ControlPlaneNotFound", func(m *marinav1alpha1.MemberCluster) bool {
		return cpCondition(m, "short-lived", marinav1alpha1.ConditionJoined, metav1.ConditionFalse, marinav1alpha1.ReasonControlPlaneNotFound)
	})
	eventually(t, "the gone control plane's tokens removed from the member", func() bool { return memberTokens(t, "edge-d") == 0 })
	waitEvent(t, mc, corev1.EventTypeNormal, "Unjoined")

	// The test's federation API server outlives the control plane that
	// named it; in life the federation goes with it.
	cl, err := federationCluster(t, "edge-d")
	if err == nil {
		_ = federation.Client.Delete(ctx, cl)
	}
	for _, name := range []string{"edge-d", "edge-d-impersonator"} {
		_ = federation.Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: join.Namespace, Name: name}})
	}
}

// TestRotateOnDemand replaces the control plane's tokens when a person
// asks for it with the rotate-tokens annotation, and reports a bad value.
func TestRotateOnDemand(t *testing.T) {
	ctx := context.Background()
	controlPlane(t, "rotating")
	secret(t, "edge-e-kubeconfig", "kubeconfig", memberKubeconfig)
	mc := memberCluster(t, "edge-e", marinav1alpha1.MemberClusterSpec{
		KubeconfigSecretRef: &marinav1alpha1.SecretKeyReference{Name: "edge-e-kubeconfig"},
		ControlPlanes:       cps("rotating"),
	})
	got := waitFor(t, mc, "Ready", func(m *marinav1alpha1.MemberCluster) bool {
		return condition(m, marinav1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})
	token := func() string {
		s := &corev1.Secret{}
		if err := federation.Client.Get(ctx, client.ObjectKey{Namespace: join.Namespace, Name: "edge-e"}, s); err != nil {
			t.Fatal(err)
		}
		return string(s.Data["token"])
	}
	old := token()

	annotate := func(v string) {
		t.Helper()
		latest := &marinav1alpha1.MemberCluster{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(got), latest); err != nil {
			t.Fatal(err)
		}
		before := latest.DeepCopy()
		latest.Annotations = map[string]string{controller.AnnotationRotateTokens: v}
		if err := k8s.Patch(ctx, latest, client.MergeFrom(before)); err != nil {
			t.Fatal(err)
		}
	}
	annotate("yesterday")
	waitEvent(t, mc, corev1.EventTypeWarning, "InvalidAnnotation")
	if token() != old {
		t.Error("a bad rotate-tokens value rotated the tokens")
	}
	// Tokens made within this second count as made at it.
	time.Sleep(1100 * time.Millisecond)
	annotate(time.Now().UTC().Format(time.RFC3339))
	eventually(t, "a new token in the control plane", func() bool { return token() != old })
	waitFor(t, mc, "still Ready", func(m *marinav1alpha1.MemberCluster) bool {
		return condition(m, marinav1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})
}

// TestSecretGoneBeforeDelete unjoins a member whose kubeconfig Secret was
// deleted before it (a policy pruning both, a namespace going): the
// control plane is cleaned, and the finalizer is released with a Warning
// naming what stayed in the member.
func TestSecretGoneBeforeDelete(t *testing.T) {
	ctx := context.Background()
	controlPlane(t, "secretless")
	s := secret(t, "edge-f-kubeconfig", "kubeconfig", memberKubeconfig)
	mc := memberCluster(t, "edge-f", marinav1alpha1.MemberClusterSpec{
		KubeconfigSecretRef: &marinav1alpha1.SecretKeyReference{Name: "edge-f-kubeconfig"},
		ControlPlanes:       cps("secretless"),
	})
	waitFor(t, mc, "Ready", func(m *marinav1alpha1.MemberCluster) bool {
		return condition(m, marinav1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})
	if err := k8s.Delete(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, mc); err != nil {
		t.Fatal(err)
	}
	waitGone(t, mc)
	if _, err := federationCluster(t, "edge-f"); !apierrors.IsNotFound(err) {
		t.Errorf("the Cluster after deletion: %v, want NotFound", err)
	}
	// The client made before the Secret went still reached the member.
	if n := memberTokens(t, "edge-f"); n != 0 {
		t.Errorf("%d token Secrets left in the member", n)
	}
}
