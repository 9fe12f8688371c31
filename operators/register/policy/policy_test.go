package policy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/localenv"
	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/register/controller"
	"github.com/marina-platform/marina/operators/register/policy"
)

// A real API server with Marina's and Cluster API's CRDs and
// kube-controller-manager's garbage collector (owner references), and the
// policy reconciler alone: the joins are the MemberCluster reconciler's
// business, tested on its own.
var k8s client.Client

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
	dir, err := os.MkdirTemp("", "marina-policy-test-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	env, err := testenv.Start()
	if err != nil {
		return 1, err
	}
	defer func() { _ = env.Stop() }()
	k8s = env.Client
	capi, err := localenv.ClusterAPICRDs(ctx)
	if err != nil {
		return 1, err
	}
	if err := env.InstallCRDs([]string{filepath.Join(capi, "cluster.x-k8s.io_clusters.yaml")}); err != nil {
		return 1, err
	}
	stop, err := env.StartControllerManager(dir, "garbagecollector")
	if err != nil {
		return 1, err
	}
	defer func() { _ = stop() }()

	opts := ctrl.Options{Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"}
	controller.ManagerOptions(&opts)
	mgr, err := ctrl.NewManager(env.Config, opts)
	if err != nil {
		return 1, err
	}
	r := &policy.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("marina-register"), DataCenter: "dc1"}
	if err := r.SetupWithManager(mgr); err != nil {
		return 1, err
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() { cancel(); <-done }()
	return m.Run(), nil
}

var nsCount int

func namespace(t *testing.T) string {
	t.Helper()
	nsCount++
	name := fmt.Sprintf("policy-%d", nsCount)
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

func controlPlane(t *testing.T, ns, name, dc string, labels map[string]string) {
	t.Helper()
	cp := testenv.ControlPlane(ns, name, dc)
	cp.Labels = labels
	if err := k8s.Create(context.Background(), cp); err != nil {
		t.Fatal(err)
	}
}

func capiCluster(t *testing.T, ns, name string, labels map[string]string) *unstructured.Unstructured {
	t.Helper()
	c := &unstructured.Unstructured{}
	c.SetAPIVersion("cluster.x-k8s.io/v1beta2")
	c.SetKind("Cluster")
	c.SetNamespace(ns)
	c.SetName(name)
	c.SetLabels(labels)
	_ = unstructured.SetNestedField(c.Object, false, "spec", "paused")
	if err := k8s.Create(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func members(t *testing.T, ns string) map[string]marinav1alpha1.MemberCluster {
	t.Helper()
	list := &marinav1alpha1.MemberClusterList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string]marinav1alpha1.MemberCluster{}
	for _, mc := range list.Items {
		if mc.DeletionTimestamp.IsZero() {
			out[mc.Name] = mc
		}
	}
	return out
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

func cpNames(mc marinav1alpha1.MemberCluster) []string {
	var out []string
	for _, r := range mc.Spec.ControlPlanes {
		out = append(out, r.Name)
	}
	return out
}

// TestAutomatic registers the selected Cluster API Clusters and kubeconfig
// Secrets into the selected control planes of the operator's data center,
// stamps the template, follows a new control plane, and deletes the
// MemberCluster of a source that went away.
func TestAutomatic(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	controlPlane(t, ns, "dc1-a", "dc1", map[string]string{"tier": "prod"})
	controlPlane(t, ns, "dc1-b", "dc1", map[string]string{"tier": "dev"})
	controlPlane(t, ns, "dc2-a", "dc2", map[string]string{"tier": "prod"}) // another data center's
	capiCluster(t, ns, "edge-1", map[string]string{"env": "prod"})
	capiCluster(t, ns, "lab-1", map[string]string{"env": "lab"})
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "legacy-1", Labels: map[string]string{"marina.dev/kubeconfig": "true"}},
		Data: map[string][]byte{"config": []byte("x")}}
	if err := k8s.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	rp := &marinav1alpha1.RegistrationPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prod"},
		Spec: marinav1alpha1.RegistrationPolicySpec{
			Sources: marinav1alpha1.RegistrationSources{
				ClusterAPI:        &marinav1alpha1.ClusterAPISource{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}},
				KubeconfigSecrets: &marinav1alpha1.KubeconfigSecretSource{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"marina.dev/kubeconfig": "true"}}, Key: "config"},
			},
			ControlPlaneSelector: metav1.LabelSelector{MatchLabels: map[string]string{"tier": "prod"}},
			Template:             marinav1alpha1.ClusterProperties{Provider: "onprem", Region: "fra"},
		},
	}
	if err := k8s.Create(ctx, rp); err != nil {
		t.Fatal(err)
	}
	eventually(t, "edge-1 and legacy-1 registered into dc1-a", func() bool {
		m := members(t, ns)
		return len(m) == 2 && slices.Equal(cpNames(m["edge-1"]), []string{"dc1-a"}) && slices.Equal(cpNames(m["legacy-1"]), []string{"dc1-a"})
	})
	m := members(t, ns)
	if ref := m["edge-1"].Spec.ClusterRef; ref == nil || ref.Name != "edge-1" || m["edge-1"].Spec.Region != "fra" {
		t.Errorf("edge-1's spec: %+v", m["edge-1"].Spec)
	}
	if ref := m["legacy-1"].Spec.KubeconfigSecretRef; ref == nil || ref.Name != "legacy-1" || ref.Key != "config" {
		t.Errorf("legacy-1's spec: %+v", m["legacy-1"].Spec)
	}
	eventually(t, "the policy's status", func() bool {
		got := &marinav1alpha1.RegistrationPolicy{}
		_ = k8s.Get(ctx, client.ObjectKeyFromObject(rp), got)
		return got.Status.MatchedClusters == 2 && got.Status.MatchedControlPlanes == 1 &&
			meta.IsStatusConditionTrue(got.Status.Conditions, marinav1alpha1.ConditionReady)
	})

	// A new control plane selected: every member joins it too.
	controlPlane(t, ns, "dc1-c", "dc1", map[string]string{"tier": "prod"})
	eventually(t, "dc1-c added", func() bool {
		return slices.Equal(cpNames(members(t, ns)["edge-1"]), []string{"dc1-a", "dc1-c"})
	})

	// The Cluster API Cluster goes: its MemberCluster goes.
	c := &unstructured.Unstructured{}
	c.SetAPIVersion("cluster.x-k8s.io/v1beta2")
	c.SetKind("Cluster")
	c.SetNamespace(ns)
	c.SetName("edge-1")
	if err := k8s.Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	eventually(t, "edge-1 deregistered", func() bool {
		_, ok := members(t, ns)["edge-1"]
		return !ok
	})

	// The policy goes: so do its MemberClusters (owner references).
	if err := k8s.Delete(ctx, rp); err != nil {
		t.Fatal(err)
	}
	eventually(t, "legacy-1 removed with its policy", func() bool {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "legacy-1"}, &marinav1alpha1.MemberCluster{})
		return apierrors.IsNotFound(err)
	})
}

// TestManualAndConflicts leaves the control planes to a person under
// Manual approval, and never takes over a MemberCluster someone else made.
func TestManualAndConflicts(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	controlPlane(t, ns, "dc1-a", "dc1", nil)
	capiCluster(t, ns, "edge-2", nil)
	capiCluster(t, ns, "hand-made", nil)
	byHand := &marinav1alpha1.MemberCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hand-made"},
		Spec:       marinav1alpha1.MemberClusterSpec{ClusterRef: &marinav1alpha1.ClusterReference{Name: "hand-made"}},
	}
	if err := k8s.Create(ctx, byHand); err != nil {
		t.Fatal(err)
	}
	rp := &marinav1alpha1.RegistrationPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "manual"},
		Spec: marinav1alpha1.RegistrationPolicySpec{
			Sources:  marinav1alpha1.RegistrationSources{ClusterAPI: &marinav1alpha1.ClusterAPISource{}},
			Approval: marinav1alpha1.ApprovalManual,
		},
	}
	if err := k8s.Create(ctx, rp); err != nil {
		t.Fatal(err)
	}
	eventually(t, "edge-2 registered without control planes, hand-made reported", func() bool {
		m := members(t, ns)
		got := &marinav1alpha1.RegistrationPolicy{}
		_ = k8s.Get(ctx, client.ObjectKeyFromObject(rp), got)
		c := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionReady)
		_, ok := m["edge-2"]
		return ok && len(m["edge-2"].Spec.ControlPlanes) == 0 && c != nil && c.Status == metav1.ConditionFalse && c.Reason == marinav1alpha1.ReasonConflict
	})
	if mc := members(t, ns)["hand-made"]; metav1.GetControllerOf(&mc) != nil {
		t.Errorf("the policy took over a MemberCluster a person made: %+v", mc.OwnerReferences)
	}

	// A person approves: the policy keeps their choice.
	mc := members(t, ns)["edge-2"]
	before := mc.DeepCopy()
	mc.Spec.ControlPlanes = []marinav1alpha1.ControlPlaneReference{{Name: "dc1-a"}}
	if err := k8s.Patch(ctx, &mc, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	// Wake the policy, then check the approval stayed.
	capiCluster(t, ns, "edge-3", nil)
	eventually(t, "edge-3 registered", func() bool { _, ok := members(t, ns)["edge-3"]; return ok })
	if got := cpNames(members(t, ns)["edge-2"]); !slices.Equal(got, []string{"dc1-a"}) {
		t.Errorf("the approved control planes became %v", got)
	}

	// A selector that cannot be read prunes nothing: it is reported.
	latest := &marinav1alpha1.RegistrationPolicy{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(rp), latest); err != nil {
		t.Fatal(err)
	}
	rpBefore := latest.DeepCopy()
	latest.Spec.Sources.ClusterAPI.Selector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: "Sometimes"}}}
	if err := k8s.Patch(ctx, latest, client.MergeFrom(rpBefore)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the bad selector reported", func() bool {
		got := &marinav1alpha1.RegistrationPolicy{}
		_ = k8s.Get(ctx, client.ObjectKeyFromObject(rp), got)
		c := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionReady)
		return c != nil && c.ObservedGeneration == got.Generation && strings.Contains(c.Message, "spec.sources.clusterAPI.selector")
	})
	if _, ok := members(t, ns)["edge-2"]; !ok {
		t.Error("a selector that cannot be read unregistered the members")
	}
}
