package controller_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/internal/testenv/federation"
	"github.com/marina-platform/marina/internal/urlpolicy"
	"github.com/marina-platform/marina/operators/sync/controller"
	"github.com/marina-platform/marina/operators/sync/peer"
)

const ns = "platform"

// fixture is a management API server running the reconciler, and two
// federation API servers with the engine's real CRDs playing control
// planes. With several data centers (startDataCenters), each has its own
// management API server, control planes and reconcilers, and replicates
// to the others through Peers as marina-sync does.
type fixture struct {
	mgmt client.Client
	// mgmts are every data center's management clients, mgmts[0] = mgmt;
	// controlPlanes their control planes' names.
	mgmts         []client.Client
	controlPlanes [][]string
	fed           map[string]client.Client // by ControlPlane name
	feds          map[string]*testenv.Env  // by ControlPlane name
	// hosts names each API server's host:port, for reports.
	hosts map[string]string
}

// start runs the fixture with a control plane (labelled env=prod) per name.
// Its control planes run kube-controller-manager's clusterrole-aggregation
// controller, as a Marina control plane does: Kubernetes' admin, edit and
// view roles hold their rules, and a ClusterRole an administrator labels
// for marina-sync adds to its rights.
func start(t testing.TB, names ...string) *fixture { return startWith(t, true, names) }

// startDataCenters runs one data center per list of control plane names,
// their control planes bare API servers.
func startDataCenters(t testing.TB, perDC ...[]string) *fixture { return startWith(t, false, perDC...) }

func startWith(t testing.TB, aggregate bool, perDC ...[]string) *fixture {
	t.Helper()
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &fixture{fed: map[string]client.Client{}, feds: map[string]*testenv.Env{}, hosts: map[string]string{}, controlPlanes: perDC}
	var envs []*testenv.Env
	var kubeconfigs [][]byte
	for i, names := range perDC {
		dc := fmt.Sprintf("dc%d", i+1)
		mgmt, err := testenv.Start()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = mgmt.Stop() })
		envs = append(envs, mgmt)
		f.mgmts = append(f.mgmts, mgmt.Client)
		f.hosts[hostOf(mgmt)] = dc + " management"
		kubeconfig, err := os.ReadFile(kubeconfigPath(t, mgmt))
		if err != nil {
			t.Fatal(err)
		}
		kubeconfigs = append(kubeconfigs, kubeconfig)
		if err := mgmt.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			fed := federation.Start(ctx, t, map[string]string{"test": "engine"})
			f.fed[name] = unstructuredClient(t, fed)
			f.feds[name] = fed
			if aggregate {
				aggregateRoles(ctx, t, fed)
			}
			f.hosts[hostOf(fed)] = name
			// marina-sync's own user, with the rights a Marina control
			// plane gives it, never the administrator.
			_, kubeconfig, err := fed.SyncUser(ctx)
			if err != nil {
				t.Fatal(err)
			}
			controlPlaneIn(t, mgmt.Client, dc, name, map[string]string{"env": "prod"}, kubeconfig)
		}
	}
	f.mgmt = f.mgmts[0]

	for i, mgmt := range envs {
		dc := fmt.Sprintf("dc%d", i+1)
		opts := ctrl.Options{Scheme: mgmt.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
			// Several data centers' operators in one process.
			Controller: config.Controller{SkipNameValidation: ptr.To(true)}}
		mgr, err := ctrl.NewManager(mgmt.Config, opts)
		if err != nil {
			t.Fatal(err)
		}
		r := &controller.Reconciler{
			Client:     mgr.GetClient(),
			Recorder:   mgr.GetEventRecorder("marina-sync"),
			URLPolicy:  urlpolicy.Policy{Allowed: urlpolicy.Hosts{"127.0.0.1"}},
			RetryAfter: time.Second,
			// Refusals back off 1, 2, 4 s: a grant made meanwhile is
			// seen within the last.
			MaxRetryAfter: 4 * time.Second,
		}
		if err := r.SetupWithManager(mgr); err != nil {
			t.Fatal(err)
		}
		if len(envs) > 1 {
			if err := (&peer.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("marina-sync"), DataCenter: dc}).SetupWithManager(mgr); err != nil {
				t.Fatal(err)
			}
			for j := range envs {
				if j == i {
					continue
				}
				other := fmt.Sprintf("dc%d", j+1)
				if err := mgmt.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "peer-" + other}, Data: map[string][]byte{"kubeconfig": kubeconfigs[j]}}); err != nil {
					t.Fatal(err)
				}
				if err := mgmt.Client.Create(ctx, &marinav1alpha1.Peer{ObjectMeta: metav1.ObjectMeta{Name: other}, Spec: marinav1alpha1.PeerSpec{DataCenter: other,
					KubeconfigSecretRef: marinav1alpha1.NamespacedSecretKeyReference{Namespace: ns, SecretKeyReference: marinav1alpha1.SecretKeyReference{Name: "peer-" + other}}}}); err != nil {
					t.Fatal(err)
				}
			}
		}
		done := make(chan error, 1)
		go func() { done <- mgr.Start(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return f
}

// aggregateRoles runs kube-controller-manager's clusterrole-aggregation
// controller against fed and waits until Kubernetes' admin role holds its
// rules, so that binding it means what it means in a real control plane.
func aggregateRoles(ctx context.Context, t testing.TB, fed *testenv.Env) {
	t.Helper()
	stop, err := fed.StartControllerManager(t.TempDir(), "clusterrole-aggregation")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop() })
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		admin := &rbacv1.ClusterRole{}
		if err := fed.Client.Get(ctx, client.ObjectKey{Name: "admin"}, admin); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return len(admin.Rules) > 0, nil
	}); err != nil {
		t.Fatalf("Kubernetes' admin role holds no rules after a minute of clusterrole-aggregation: %v", err)
	}
}

func hostOf(e *testenv.Env) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(e.Config.Host, "https://"), "http://"), "/")
}

func kubeconfigPath(t testing.TB, e *testenv.Env) string {
	t.Helper()
	dir := t.TempDir()
	p, err := e.KubeconfigFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(p)
}

func unstructuredClient(t testing.TB, e *testenv.Env) client.Client {
	t.Helper()
	c, err := client.New(e.Config, client.Options{Scheme: runtime.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// controlPlane makes a ControlPlane whose status says it serves, with the
// sync operator's kubeconfig Secret (nil kubeconfig: not Ready): the controlplane
// operator's part, which does not run here.
func (f *fixture) controlPlane(t testing.TB, name string, labels map[string]string, kubeconfig []byte) {
	t.Helper()
	controlPlaneIn(t, f.mgmt, "dc1", name, labels, kubeconfig)
}

func controlPlaneIn(t testing.TB, mgmt client.Client, dc, name string, labels map[string]string, kubeconfig []byte) {
	t.Helper()
	ctx := context.Background()
	cp := testenv.ControlPlane(ns, name, dc)
	cp.Labels = labels
	if err := mgmt.Create(ctx, cp); err != nil {
		t.Fatal(err)
	}
	if kubeconfig == nil {
		return
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-sync-kubeconfig"}, Data: map[string][]byte{"kubeconfig": kubeconfig}}
	if err := mgmt.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	cp.Status.SyncKubeconfigSecretRef = &marinav1alpha1.SecretKeyReference{Name: s.Name, Key: "kubeconfig"}
	meta.SetStatusCondition(&cp.Status.Conditions, metav1.Condition{Type: marinav1alpha1.ConditionAPIServerReady, Status: metav1.ConditionTrue, Reason: "Succeeded"})
	if err := mgmt.Status().Update(ctx, cp); err != nil {
		t.Fatal(err)
	}
}

func obj(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

// raw is an inline object as the API takes it: JSON.
func raw(t *testing.T, doc string) runtime.RawExtension {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return runtime.RawExtension{Raw: j}
}

const extraPolicy = `
apiVersion: policy.karmada.io/v1alpha1
kind: ClusterPropagationPolicy
metadata:
  name: extra
spec:
  resourceSelectors: [{apiVersion: v1, kind: ConfigMap, name: extra, namespace: tenant-example}]
  placement: {clusterAffinity: {}}
`

// bindTenantRoles is the grant policies/README.md gives for the
// tenant-example bundle: bind on Kubernetes' admin, edit and view roles.
const bindTenantRoles = `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: marina-sync-bind-tenant-roles
  labels:
    marina.dev/aggregate-to-sync-operator: "true"
rules:
  - apiGroups: [rbac.authorization.k8s.io]
    resources: [clusterroles]
    resourceNames: [admin, edit, view]
    verbs: [bind]
`

// waitFor polls the PolicySet until ok says so, and fails with its status.
func (f *fixture) waitFor(t *testing.T, name, what string, ok func(*marinav1alpha1.PolicySet) bool) *marinav1alpha1.PolicySet {
	t.Helper()
	ps := &marinav1alpha1.PolicySet{}
	deadline := time.Now().Add(time.Minute)
	for {
		if err := f.mgmt.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, ps); err == nil && ok(ps) {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("PolicySet %s: %s not seen in 1m; status: %+v", name, what, ps.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func ready(ps *marinav1alpha1.PolicySet) bool {
	c := meta.FindStatusCondition(ps.Status.Conditions, marinav1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == ps.Generation
}

func reason(ps *marinav1alpha1.PolicySet, typ string) string {
	if c := meta.FindStatusCondition(ps.Status.Conditions, typ); c != nil && c.ObservedGeneration == ps.Generation {
		return c.Reason
	}
	return ""
}

func (f *fixture) exists(t *testing.T, cp string, u *unstructured.Unstructured) bool {
	t.Helper()
	got := u.DeepCopy()
	err := f.fed[cp].Get(context.Background(), client.ObjectKeyFromObject(u), got)
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// event says whether the PolicySet has an Event of reason whose note
// contains text.
func (f *fixture) event(t *testing.T, name, reason, text string) bool {
	t.Helper()
	list := &eventsv1.EventList{}
	if err := f.mgmt.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(list.Items, func(e eventsv1.Event) bool {
		return e.Regarding.Name == name && e.Reason == reason && strings.Contains(e.Note, text)
	})
}

func (f *fixture) eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) { return ok(), nil }); err != nil {
		t.Fatalf("%s: not within 1m", what)
	}
}

// TestPolicySets runs a PolicySet through its life against two real
// federation API servers holding the engine's CRDs.
func TestPolicySets(t *testing.T) {
	f := start(t, "fra1", "fra2")
	ctx := context.Background()
	// A third control plane is selected but never Ready.
	f.controlPlane(t, "fra3", map[string]string{"env": "prod"}, nil)

	quota := obj("policy.karmada.io/v1alpha1", "FederatedResourceQuota", "tenant-example", "tenant-example")
	extra := obj("policy.karmada.io/v1alpha1", "ClusterPropagationPolicy", "", "extra")
	namespace := obj("v1", "Namespace", "", "tenant-example")

	ps := &marinav1alpha1.PolicySet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "platform"},
		Spec: marinav1alpha1.PolicySetSpec{
			Sources: []marinav1alpha1.PolicySource{
				{Bundle: "tenant-example"},
				{Inline: []runtime.RawExtension{raw(t, extraPolicy)}},
			},
			ControlPlaneSelector: metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}},
		},
	}
	if err := f.mgmt.Create(ctx, ps); err != nil {
		t.Fatal(err)
	}

	t.Run("what marina-sync may not write is reported with how to grant it", func(t *testing.T) {
		// The bundle binds Kubernetes' admin role in the tenant's
		// namespace; marina-sync holds no bind on it until an
		// administrator of the control plane grants it.
		f.waitFor(t, "platform", "fra1 and fra2 Applied=False NotPermitted naming the RoleBinding", func(ps *marinav1alpha1.PolicySet) bool {
			n := 0
			for _, tgt := range ps.Status.Targets {
				c := meta.FindStatusCondition(tgt.Conditions, marinav1alpha1.ConditionApplied)
				if c != nil && c.Reason == marinav1alpha1.ReasonNotPermitted &&
					strings.Contains(c.Message, "RoleBinding tenant-example/tenant-example-admins") &&
					strings.Contains(c.Message, "ClusterRole labelled marina.dev/aggregate-to-sync-operator=true") &&
					strings.Contains(c.Message, "the other 6 are applied") {
					n++
				}
			}
			return n == 2
		})
		f.eventually(t, "a Warning Event NotPermitted naming the RoleBinding", func() bool {
			return f.event(t, "platform", marinav1alpha1.ReasonNotPermitted, "RoleBinding tenant-example/tenant-example-admins")
		})
		// The administrator grants it as policies/README.md says, and
		// each control plane's kube-controller-manager folds it into
		// marina-sync's aggregated role.
		for _, name := range []string{"fra1", "fra2"} {
			grant := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(bindTenantRoles), &grant.Object); err != nil {
				t.Fatal(err)
			}
			if err := f.fed[name].Create(ctx, grant); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("applied to every selected control plane; one not Ready is reported", func(t *testing.T) {
		got := f.waitFor(t, "platform", "Applied=False ControlPlaneNotReady", func(ps *marinav1alpha1.PolicySet) bool {
			applied := 0
			for _, tgt := range ps.Status.Targets {
				if tgt.Revision == ps.Status.Checksum {
					applied++
				}
			}
			return reason(ps, marinav1alpha1.ConditionApplied) == marinav1alpha1.ReasonControlPlaneNotReady && len(ps.Status.Targets) == 3 && applied == 2
		})
		if got.Status.Objects != 7 || len(got.Status.Checksum) != 64 {
			t.Errorf("objects %d, checksum %q; want the bundle's 6 and the inline one, and a sha256", got.Status.Objects, got.Status.Checksum)
		}
		for _, tgt := range got.Status.Targets {
			switch tgt.Name {
			case "fra1", "fra2":
				if tgt.Revision != got.Status.Checksum || tgt.Applied != 7 {
					t.Errorf("target %s: revision %s, applied %d; want %s and 7", tgt.Name, tgt.Revision, tgt.Applied, got.Status.Checksum)
				}
			case "fra3":
				c := meta.FindStatusCondition(tgt.Conditions, marinav1alpha1.ConditionApplied)
				if c == nil || c.Reason != marinav1alpha1.ReasonControlPlaneNotReady || !strings.Contains(c.Message, "API server is not Ready") {
					t.Errorf("target fra3: %+v, want ControlPlaneNotReady saying why", c)
				}
			}
		}
		for _, cp := range []string{"fra1", "fra2"} {
			for _, u := range []*unstructured.Unstructured{namespace, quota, extra} {
				got := u.DeepCopy()
				if err := f.fed[cp].Get(ctx, client.ObjectKeyFromObject(u), got); err != nil {
					t.Fatalf("%s: %s %s: %v", cp, u.GetKind(), u.GetName(), err)
				}
				if l := got.GetLabels(); l[marinav1alpha1.LabelPolicySet] != "platform" || l[marinav1alpha1.LabelPolicySetNamespace] != ns {
					t.Errorf("%s: %s %s labels %v", cp, u.GetKind(), u.GetName(), l)
				}
			}
		}
	})

	t.Run("the unready control plane leaves the selection: Ready", func(t *testing.T) {
		cp := &marinav1alpha1.ControlPlane{}
		if err := f.mgmt.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fra3"}, cp); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(cp.DeepCopy())
		cp.Labels["env"] = "staging"
		if err := f.mgmt.Patch(ctx, cp, patch); err != nil {
			t.Fatal(err)
		}
		got := f.waitFor(t, "platform", "Ready", ready)
		if len(got.Status.Targets) != 2 {
			t.Errorf("targets %+v, want fra1 and fra2", got.Status.Targets)
		}
	})

	t.Run("a hand edit is put back (Correct), as soon as it is made", func(t *testing.T) {
		live := quota.DeepCopy()
		if err := f.fed["fra1"].Get(ctx, client.ObjectKeyFromObject(quota), live); err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedField(live.Object, "99", "spec", "overall", "cpu"); err != nil {
			t.Fatal(err)
		}
		if err := f.fed["fra1"].Update(ctx, live); err != nil {
			t.Fatal(err)
		}
		f.eventually(t, "the quota's cpu back to 20", func() bool {
			got := quota.DeepCopy()
			_ = f.fed["fra1"].Get(ctx, client.ObjectKeyFromObject(quota), got)
			cpu, _, _ := unstructured.NestedString(got.Object, "spec", "overall", "cpu")
			return cpu == "20"
		})
		// The condition says DriftCorrected until the next pass finds all
		// as applied; the Event stays.
		f.eventually(t, "a DriftCorrected Event naming the quota", func() bool {
			return f.event(t, "platform", marinav1alpha1.ReasonDriftCorrected, "FederatedResourceQuota tenant-example/tenant-example")
		})
		// A deleted object comes back too.
		if err := f.fed["fra2"].Delete(ctx, extra.DeepCopy()); err != nil {
			t.Fatal(err)
		}
		f.eventually(t, "the deleted ClusterPropagationPolicy back in fra2", func() bool { return f.exists(t, "fra2", extra) })
	})

	t.Run("a hand edit is only reported (Report)", func(t *testing.T) {
		cur := &marinav1alpha1.PolicySet{}
		if err := f.mgmt.Get(ctx, client.ObjectKey{Namespace: ns, Name: "platform"}, cur); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Spec.DriftMode = marinav1alpha1.DriftModeReport
		if err := f.mgmt.Patch(ctx, cur, patch); err != nil {
			t.Fatal(err)
		}
		f.waitFor(t, "platform", "Ready in Report mode", ready)
		live := quota.DeepCopy()
		if err := f.fed["fra2"].Get(ctx, client.ObjectKeyFromObject(quota), live); err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedField(live.Object, "77", "spec", "overall", "cpu"); err != nil {
			t.Fatal(err)
		}
		if err := f.fed["fra2"].Update(ctx, live); err != nil {
			t.Fatal(err)
		}
		got := f.waitFor(t, "platform", "Drifted=True DriftDetected naming the quota", func(ps *marinav1alpha1.PolicySet) bool {
			for _, tgt := range ps.Status.Targets {
				if tgt.Name == "fra2" && slices.Contains(tgt.DriftedObjects, "FederatedResourceQuota tenant-example/tenant-example") {
					return reason(ps, marinav1alpha1.ConditionDrifted) == marinav1alpha1.ReasonDriftDetected
				}
			}
			return false
		})
		time.Sleep(2 * time.Second) // passes run meanwhile (RetryAfter is 1 s): none may revert it
		after := quota.DeepCopy()
		if err := f.fed["fra2"].Get(ctx, client.ObjectKeyFromObject(quota), after); err != nil {
			t.Fatal(err)
		}
		if cpu, _, _ := unstructured.NestedString(after.Object, "spec", "overall", "cpu"); cpu != "77" {
			t.Errorf("quota cpu %q after a Report-mode pass, want the hand edit 77 kept", cpu)
		}
		t.Logf("reported: %v", got.Status.Targets)
		// Back to Correct for the rest.
		if err := f.mgmt.Get(ctx, client.ObjectKey{Namespace: ns, Name: "platform"}, cur); err != nil {
			t.Fatal(err)
		}
		patch = client.MergeFrom(cur.DeepCopy())
		cur.Spec.DriftMode = marinav1alpha1.DriftModeCorrect
		if err := f.mgmt.Patch(ctx, cur, patch); err != nil {
			t.Fatal(err)
		}
		f.eventually(t, "the quota's cpu back to 20 in Correct mode", func() bool {
			got := quota.DeepCopy()
			_ = f.fed["fra2"].Get(ctx, client.ObjectKeyFromObject(quota), got)
			cpu, _, _ := unstructured.NestedString(got.Object, "spec", "overall", "cpu")
			return cpu == "20"
		})
	})

	t.Run("an object that left the set is pruned; one Marina did not apply is kept", func(t *testing.T) {
		// Someone else's object with the PolicySet's labels.
		mine := obj("policy.karmada.io/v1alpha1", "ClusterPropagationPolicy", "", "someone-elses")
		mine.SetLabels(map[string]string{marinav1alpha1.LabelPolicySet: "platform", marinav1alpha1.LabelPolicySetNamespace: ns})
		if err := unstructured.SetNestedField(mine.Object, map[string]any{"resourceSelectors": []any{map[string]any{"apiVersion": "v1", "kind": "Secret"}}}, "spec"); err != nil {
			t.Fatal(err)
		}
		if err := f.fed["fra1"].Create(ctx, mine, client.FieldOwner("kubectl")); err != nil {
			t.Fatal(err)
		}
		// In fra2 an administrator marks extra as Marina's own: the
		// control plane's admission policy now refuses marina-sync's
		// delete, and marina-sync leaves it and says so.
		labelled := extra.DeepCopy()
		if err := f.fed["fra2"].Get(ctx, client.ObjectKeyFromObject(extra), labelled); err != nil {
			t.Fatal(err)
		}
		lp := client.MergeFrom(labelled.DeepCopy())
		labelled.SetLabels(map[string]string{marinav1alpha1.LabelManagedBy: marinav1alpha1.ManagedByValue,
			marinav1alpha1.LabelPolicySet: "platform", marinav1alpha1.LabelPolicySetNamespace: ns})
		if err := f.fed["fra2"].Patch(ctx, labelled, lp); err != nil {
			t.Fatal(err)
		}
		cur := &marinav1alpha1.PolicySet{}
		if err := f.mgmt.Get(ctx, client.ObjectKey{Namespace: ns, Name: "platform"}, cur); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Spec.Sources = cur.Spec.Sources[:1]
		if err := f.mgmt.Patch(ctx, cur, patch); err != nil {
			t.Fatal(err)
		}
		got := f.waitFor(t, "platform", "Ready with 6 objects", func(ps *marinav1alpha1.PolicySet) bool { return ready(ps) && ps.Status.Objects == 6 })
		f.eventually(t, "extra pruned from fra1", func() bool { return !f.exists(t, "fra1", extra) })
		f.eventually(t, "a Warning Event saying extra is left in fra2", func() bool {
			return f.event(t, "platform", marinav1alpha1.ReasonApplyFailed, "left in place, though they left the set: ClusterPropagationPolicy extra")
		})
		if !f.exists(t, "fra2", extra) {
			t.Errorf("an object labelled as Marina's was pruned")
		}
		if err := f.fed["fra2"].Delete(ctx, labelled); err != nil {
			t.Fatal(err)
		}
		if !f.exists(t, "fra1", mine) {
			t.Errorf("an object Marina did not apply was pruned")
		}
		for _, tgt := range got.Status.Targets {
			if tgt.Revision != got.Status.Checksum {
				t.Errorf("target %s at %s, want %s", tgt.Name, tgt.Revision, got.Status.Checksum)
			}
		}
	})

	t.Run("a bad source changes nothing and says what to fix", func(t *testing.T) {
		cur := &marinav1alpha1.PolicySet{}
		if err := f.mgmt.Get(ctx, client.ObjectKey{Namespace: ns, Name: "platform"}, cur); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(cur.DeepCopy())
		cur.Spec.Sources = append(cur.Spec.Sources, marinav1alpha1.PolicySource{ConfigMapRef: &marinav1alpha1.ConfigMapReference{Name: "missing"}})
		if err := f.mgmt.Patch(ctx, cur, patch); err != nil {
			t.Fatal(err)
		}
		got := f.waitFor(t, "platform", "SourcesReady=False", func(ps *marinav1alpha1.PolicySet) bool {
			return reason(ps, marinav1alpha1.ConditionSourcesReady) == marinav1alpha1.ReasonSourceUnavailable
		})
		c := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionSourcesReady)
		if !strings.Contains(c.Message, "spec.sources[1]: ConfigMap platform/missing does not exist") {
			t.Errorf("message %q, want it to name the source and the ConfigMap", c.Message)
		}
		f.eventually(t, "a SourceUnavailable Warning Event", func() bool {
			return f.event(t, "platform", marinav1alpha1.ReasonSourceUnavailable, "ConfigMap platform/missing does not exist")
		})
		if !f.exists(t, "fra1", quota) || !f.exists(t, "fra1", namespace) {
			t.Errorf("a bad source cost a control plane its objects")
		}
		// The ConfigMap appears: picked up without a spec change.
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "missing"}, Data: map[string]string{"p.yaml": extraPolicy}}
		if err := f.mgmt.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
		f.waitFor(t, "platform", "Ready with the ConfigMap's object", func(ps *marinav1alpha1.PolicySet) bool { return ready(ps) && ps.Status.Objects == 7 })
		f.eventually(t, "extra back in fra2 from the ConfigMap", func() bool { return f.exists(t, "fra2", extra) })
	})

	t.Run("an object another PolicySet applies is a reported conflict", func(t *testing.T) {
		rival := &marinav1alpha1.PolicySet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rival"},
			Spec: marinav1alpha1.PolicySetSpec{
				Sources:              []marinav1alpha1.PolicySource{{Inline: []runtime.RawExtension{raw(t, extraPolicy)}}},
				ControlPlaneSelector: metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}},
			},
		}
		if err := f.mgmt.Create(ctx, rival); err != nil {
			t.Fatal(err)
		}
		got := f.waitFor(t, "rival", "Applied=False ApplyFailed", func(ps *marinav1alpha1.PolicySet) bool {
			return reason(ps, marinav1alpha1.ConditionApplied) == marinav1alpha1.ReasonApplyFailed && len(ps.Status.Targets) == 2
		})
		for _, tgt := range got.Status.Targets {
			c := meta.FindStatusCondition(tgt.Conditions, marinav1alpha1.ConditionApplied)
			if c == nil || !strings.Contains(c.Message, "PolicySet platform/platform applies it already") {
				t.Errorf("target %s: %+v, want the conflict named", tgt.Name, c)
			}
		}
		live := extra.DeepCopy()
		if err := f.fed["fra1"].Get(ctx, client.ObjectKeyFromObject(extra), live); err != nil {
			t.Fatal(err)
		}
		if n := live.GetLabels()[marinav1alpha1.LabelPolicySet]; n != "platform" {
			t.Errorf("the contested object is labelled for %q, want it left with platform", n)
		}
		if err := f.mgmt.Delete(ctx, rival); err != nil {
			t.Fatal(err)
		}
		f.eventually(t, "rival gone", func() bool {
			return apierrors.IsNotFound(f.mgmt.Get(ctx, client.ObjectKeyFromObject(rival), &marinav1alpha1.PolicySet{}))
		})
		if !f.exists(t, "fra1", extra) {
			t.Errorf("deleting the rival PolicySet pruned platform's object")
		}
	})

	t.Run("what the engine keeps, and a kind marina-sync may not write, are refused and never block", func(t *testing.T) {
		// The members' credentials live in karmada-cluster: a set that
		// took it over would delete it when pruned. A ConfigMap is not
		// in marina-sync's grant here.
		reservedNS := obj("v1", "Namespace", "", "karmada-cluster")
		settings := obj("v1", "ConfigMap", "tenant-example", "settings")
		bold := &marinav1alpha1.PolicySet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bold"},
			Spec: marinav1alpha1.PolicySetSpec{
				Sources: []marinav1alpha1.PolicySource{{Inline: testenv.Inline(t,
					map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "karmada-cluster"}},
					map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"namespace": "tenant-example", "name": "settings"}, "data": map[string]any{"k": "v"}},
				)}},
				ControlPlaneSelector: metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}},
			},
		}
		if err := f.mgmt.Create(ctx, bold); err != nil {
			t.Fatal(err)
		}
		got := f.waitFor(t, "bold", "both refused in fra1 and fra2", func(ps *marinav1alpha1.PolicySet) bool {
			n := 0
			for _, tgt := range ps.Status.Targets {
				c := meta.FindStatusCondition(tgt.Conditions, marinav1alpha1.ConditionApplied)
				if c != nil && c.Reason == marinav1alpha1.ReasonApplyFailed &&
					strings.Contains(c.Message, "Namespace karmada-cluster: not applied: it is namespace karmada-cluster, which the engine and Kubernetes keep") &&
					strings.Contains(c.Message, `ConfigMap tenant-example/settings: configmaps "settings" is forbidden: User "marina:sync-operator" cannot`) {
					n++
				}
			}
			return n == 2
		})
		if slices.Contains(got.Status.AppliedKinds, "v1/ConfigMap") {
			t.Errorf("applied kinds %v hold ConfigMaps, of which nothing could be applied", got.Status.AppliedKinds)
		}
		if f.exists(t, "fra1", settings) {
			t.Error("the ConfigMap was written")
		}
		ns := reservedNS.DeepCopy()
		if err := f.fed["fra1"].Get(ctx, client.ObjectKeyFromObject(reservedNS), ns); err == nil && ns.GetLabels()[marinav1alpha1.LabelPolicySet] != "" {
			t.Errorf("karmada-cluster was taken over: labels %v", ns.GetLabels())
		}
		// Deleting it is not held up by a kind it may not list.
		if err := f.mgmt.Delete(ctx, bold); err != nil {
			t.Fatal(err)
		}
		f.eventually(t, "bold gone", func() bool {
			return apierrors.IsNotFound(f.mgmt.Get(ctx, client.ObjectKeyFromObject(bold), &marinav1alpha1.PolicySet{}))
		})
	})

	t.Run("an HTTP source is checked against its sha256", func(t *testing.T) {
		body := []byte(strings.ReplaceAll(extraPolicy, "name: extra\n", "name: from-http\n"))
		sum := sha256.Sum256(body)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }))
		defer srv.Close()
		ps := &marinav1alpha1.PolicySet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "from-http"},
			Spec: marinav1alpha1.PolicySetSpec{
				Sources:              []marinav1alpha1.PolicySource{{HTTP: &marinav1alpha1.HTTPSource{URL: srv.URL + "/p.yaml", SHA256: strings.Repeat("0", 64)}}},
				ControlPlaneSelector: metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}},
				Prune:                ptr.To(true),
			},
		}
		if err := f.mgmt.Create(ctx, ps); err != nil {
			t.Fatal(err)
		}
		got := f.waitFor(t, "from-http", "SourcesReady=False on the checksum", func(ps *marinav1alpha1.PolicySet) bool {
			return reason(ps, marinav1alpha1.ConditionSourcesReady) == marinav1alpha1.ReasonSourceUnavailable
		})
		if c := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionSourcesReady); !strings.Contains(c.Message, "checksum mismatch") || !strings.Contains(c.Message, hex.EncodeToString(sum[:])) {
			t.Errorf("message %q, want a checksum mismatch naming the actual sha256", c.Message)
		}
		patch := client.MergeFrom(got.DeepCopy())
		got.Spec.Sources[0].HTTP.SHA256 = hex.EncodeToString(sum[:])
		if err := f.mgmt.Patch(ctx, got, patch); err != nil {
			t.Fatal(err)
		}
		f.waitFor(t, "from-http", "Ready", ready)
	})

	t.Run("deleting a PolicySet prunes what it applied", func(t *testing.T) {
		for _, name := range []string{"from-http", "platform"} {
			if err := f.mgmt.Delete(ctx, &marinav1alpha1.PolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}); err != nil {
				t.Fatal(err)
			}
			f.eventually(t, "PolicySet "+name+" gone", func() bool {
				return apierrors.IsNotFound(f.mgmt.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &marinav1alpha1.PolicySet{}))
			})
		}
		for _, cp := range []string{"fra1", "fra2"} {
			for _, u := range []*unstructured.Unstructured{quota, extra} {
				if f.exists(t, cp, u) {
					t.Errorf("%s: %s %s left after its PolicySet was deleted", cp, u.GetKind(), u.GetName())
				}
			}
		}
		if !f.exists(t, "fra1", obj("policy.karmada.io/v1alpha1", "ClusterPropagationPolicy", "", "someone-elses")) {
			t.Errorf("deleting the PolicySet deleted an object Marina did not apply")
		}
	})
}
