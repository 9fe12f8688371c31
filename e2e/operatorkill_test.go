package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/localenv"
	"github.com/marina-platform/marina/operators/controlplane/controller"
)

// milestone is a point of a create or a delete, seen from outside the
// operator: the first thing a stage leaves in the management cluster, or
// the last thing a cleanup step removes.
type milestone struct {
	stage string
	seen  func() bool
}

// TestOperatorKilledAtEveryStage kills the controlplane operator (its pod
// deleted with no grace period: the process gets SIGKILL, as on a node
// failure) as soon as each stage of a create, and then of a delete, has
// left its first mark, so that the next operator takes over a half-done
// stage. The create must converge with nothing made twice (no extra
// rollout, no certificate issued again, one etcd user and role), and the
// delete must leave nothing behind: no object in the management cluster,
// no key, user or role in etcd.
func TestOperatorKilledAtEveryStage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dc := env.DataCenters()[0]
	mgmt := mgmtClient(t, dc.Kubeconfig())
	ns := tenantNamespace(ctx, t, mgmt, "e2e-kill")
	cp, err := env.ControlPlane(dc, ns, "kappa")
	if err != nil {
		t.Fatal(err)
	}
	cp.Spec.DeletionPolicy = marinav1alpha1.DeletionPolicyDelete
	name := cp.Name

	exists := func(obj client.Object, n string) func() bool {
		return func() bool { return mgmt.Get(ctx, client.ObjectKey{Namespace: ns, Name: n}, obj) == nil }
	}
	gone := func(obj client.Object, n string) func() bool {
		return func() bool {
			return apierrors.IsNotFound(mgmt.Get(ctx, client.ObjectKey{Namespace: ns, Name: n}, obj))
		}
	}
	current := func() *marinav1alpha1.ControlPlane {
		got := &marinav1alpha1.ControlPlane{}
		if err := mgmt.Get(ctx, client.ObjectKeyFromObject(cp), got); err != nil {
			return nil
		}
		return got
	}
	certificate := func() client.Object {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("cert-manager.io/v1")
		u.SetKind("Certificate")
		return u
	}

	create := []milestone{
		{"prerequisites, urls, data store (the finalizer is on)", func() bool {
			got := current()
			return got != nil && controllerutil.ContainsFinalizer(got, controller.Finalizer)
		}},
		{"certificates (the signer CA's Certificate is made)", exists(certificate(), name+"-signer-ca")},
		{"etcd (the tenant's etcd client Secret is made)", exists(&corev1.Secret{}, name+"-etcd-client")},
		{"api server (its Deployment is made)", exists(&appsv1.Deployment{}, name+"-apiserver")},
		{"crds (the API server is Ready)", func() bool {
			got := current()
			return got != nil && meta.IsStatusConditionTrue(got.Status.Conditions, marinav1alpha1.ConditionAPIServerReady)
		}},
		{"components (kube-controller-manager's Deployment is made)", exists(&appsv1.Deployment{}, name+"-kube-controller-manager")},
		{"admin kubeconfig (its Secret is made)", exists(&corev1.Secret{}, name+"-admin-kubeconfig")},
		{"member registration access (its kubeconfig Secret is made)", exists(&corev1.Secret{}, name+"-registration-kubeconfig")},
	}
	start := time.Now()
	mustCreate(ctx, t, mgmt, cp)
	kills := killAtMilestones(ctx, t, mgmt, dc, create)
	got := waitReady(ctx, t, mgmt, cp, 5*time.Minute)
	t.Logf("create: Ready %s after creation, with %d operator kills", time.Since(start).Round(time.Second), kills)

	// Nothing made twice.
	if got.Status.ObservedGeneration != got.Generation {
		t.Errorf("observedGeneration %d, generation %d", got.Status.ObservedGeneration, got.Generation)
	}
	for _, d := range []string{name + "-apiserver", name + "-kube-controller-manager"} {
		rs := &appsv1.ReplicaSetList{}
		if err := mgmt.List(ctx, rs, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		var of []string
		for _, r := range rs.Items {
			if ref := metav1.GetControllerOf(&r); ref != nil && ref.Name == d {
				of = append(of, r.Name)
			}
		}
		t.Logf("Deployment %s: ReplicaSets %v", d, of)
		if len(of) != 1 {
			t.Errorf("Deployment %s has ReplicaSets %v, want one: an operator restart rolled its pods", d, of)
		}
	}
	certs := &unstructured.UnstructuredList{}
	certs.SetAPIVersion("cert-manager.io/v1")
	certs.SetKind("CertificateList")
	if err := mgmt.List(ctx, certs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, c := range certs.Items {
		rev, _, _ := unstructured.NestedInt64(c.Object, "status", "revision")
		if rev != 1 {
			t.Errorf("Certificate %s at revision %d, want 1: issued again after an operator restart", c.GetName(), rev)
		}
	}
	t.Logf("%d Certificates, each issued once", len(certs.Items))
	cli, err := env.ExternalEtcd().Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if got.Status.Etcd == nil {
		t.Fatalf("status.etcd is empty on a Ready ControlPlane of DataStore %s", localenv.DataStoreName)
	}
	user := got.Status.Etcd.User
	role, err := cli.RoleGet(ctx, user)
	if err != nil {
		t.Fatalf("etcd role %s: %v", user, err)
	}
	u, err := cli.UserGet(ctx, user)
	if err != nil {
		t.Fatalf("etcd user %s: %v", user, err)
	}
	t.Logf("etcd user %s with roles %v; role with %d permission(s)", user, u.Roles, len(role.Perm))
	if len(role.Perm) != 1 || len(u.Roles) != 1 || u.Roles[0] != user {
		t.Errorf("etcd role %s has %d permissions and user roles %v, want one permission and one role", user, len(role.Perm), u.Roles)
	}
	envCA, err := env.CA()
	if err != nil {
		t.Fatal(err)
	}
	// The operator running now started after the last kill: its metrics
	// hold the ControlPlane's conditions all the same.
	series := fmt.Sprintf(`marina_controlplane_condition{name=%q,namespace=%q,status="True",type="Ready"} 1`, name, ns)
	waitFor(ctx, t, "the restarted operator's metrics to show "+series, func() bool {
		return strings.Contains(operatorMetrics(ctx, t, mgmt, ns), series)
	})
	t.Logf("the operator started after the last kill publishes %s", series)
	fed := federationClient(ctx, t, mgmt, dc, got, envCA.Cert)
	mustCreate(ctx, t, fed, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "written-after-kills"}})
	prefix := got.Status.Etcd.KeyPrefix + "/"
	before, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}

	del := []milestone{
		{"workloads (deletion started)", func() bool {
			got := current()
			return got == nil || !got.DeletionTimestamp.IsZero()
		}},
		{"workloads (the API server's Deployment is gone)", gone(&appsv1.Deployment{}, name+"-apiserver")},
		{"certificates (the API server's Certificate is gone)", gone(certificate(), name+"-apiserver")},
		{"secrets (the etcd client Secret is gone; the data store's keys, user and role next)", gone(&corev1.Secret{}, name+"-etcd-client")},
		{"data store (the keys under its prefix are purged; user, role and finalizer next)", func() bool {
			resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
			return err == nil && resp.Count == 0
		}},
	}
	start = time.Now()
	if err := mgmt.Delete(ctx, cp); err != nil {
		t.Fatal(err)
	}
	kills = killAtMilestones(ctx, t, mgmt, dc, del)
	waitFor(ctx, t, "ControlPlane "+name+" to be deleted", func() bool { return current() == nil })
	t.Logf("delete: gone %s after the delete, with %d operator kills", time.Since(start).Round(time.Second), kills)

	checkNothingLeft(ctx, t, mgmt, ns, name)
	after, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	_, roleErr := cli.RoleGet(ctx, user)
	_, userErr := cli.UserGet(ctx, user)
	t.Logf("etcd: %d keys under %s before the delete, %d after; role: %v; user: %v", before.Count, prefix, after.Count, roleErr, userErr)
	if before.Count == 0 || after.Count != 0 {
		t.Errorf("keys under %s: %d before the delete (want some), %d after (want none)", prefix, before.Count, after.Count)
	}
	if roleErr == nil || userErr == nil {
		t.Errorf("etcd role %s (%v) or user (%v) still there after the delete", user, roleErr, userErr)
	}
}

// killAtMilestones waits for each milestone in turn and, as soon as it is
// seen, kills the controlplane operator. It goes on to the next milestone
// at once: only the successor can reach it, once it holds the Lease the
// killed one left (at most the Lease duration later). A successor can pass
// several quick marks in one go (a Secret and a Deployment made within
// milliseconds); each kill logs the later milestones already reached, so a
// kill that landed past its stage is visible, and those get no kill of
// their own. It returns the number of kills.
func killAtMilestones(ctx context.Context, t *testing.T, mgmt client.Client, dc localenv.DataCenter, ms []milestone) int {
	t.Helper()
	kills := 0
	last := time.Now()
	reached := map[string]bool{}
	for i, m := range ms {
		if reached[m.stage] {
			// The killed operator got there itself; the kill was later.
			t.Logf("no kill at %s: the previous operator had reached it before it was killed", m.stage)
			continue
		}
		deadline := time.Now().Add(4 * time.Minute)
		for !m.seen() {
			if time.Now().After(deadline) || ctx.Err() != nil {
				t.Fatalf("stage %q never reached in 4m", m.stage)
			}
			time.Sleep(100 * time.Millisecond)
		}
		var past []string
		for _, later := range ms[i+1:] {
			if later.seen() {
				past = append(past, later.stage)
				reached[later.stage] = true
			}
		}
		pod := killOperator(ctx, t, mgmt, dc)
		kills++
		note := ""
		if len(past) > 0 {
			note = "; already past: " + strings.Join(past, ", ")
		}
		t.Logf("killed %s at %s, %s after the previous kill (or the start)%s", pod, m.stage, time.Since(last).Round(time.Second), note)
		last = time.Now()
	}
	return kills
}

// killOperator kills the data center's controlplane operator as a crash
// or a node failure does: SIGKILL to its process, so it neither finishes
// what it was doing nor releases its Lease, and then its pod is deleted, so
// the Deployment's next pod takes over once the Lease expires (no restart
// backoff piling up over a dozen kills). Right after a kill the next pod may
// still be on its way; it waits for its process. It returns the pod's name.
func killOperator(ctx context.Context, t *testing.T, mgmt client.Client, dc localenv.DataCenter) string {
	t.Helper()
	// The data center's flag ends at the NUL between arguments; only the
	// controlplane operator takes a KMS plugin image.
	match := []string{"--data-center=" + dc.Name + "\x00", "--kms-plugin-image="}
	var pids []int
	var pod *corev1.Pod
	waitFor(ctx, t, "a controlplane operator process to kill", func() bool {
		pids = processes("manager", match...)
		pods := &corev1.PodList{}
		if len(pids) != 1 || mgmt.List(ctx, pods, client.InNamespace(localenv.MarinaNamespace), client.MatchingLabels{"app.kubernetes.io/name": "marina-controlplane"}) != nil {
			return false
		}
		for i := range pods.Items {
			if p := &pods.Items[i]; p.DeletionTimestamp.IsZero() && p.Status.Phase == corev1.PodRunning {
				pod = p
				return true
			}
		}
		return false
	})
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatalf("kill the controlplane operator (pid %d): %v", pids[0], err)
	}
	if err := mgmt.Delete(ctx, pod, client.GracePeriodSeconds(0)); client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s (pid %d)", pod.Name, pids[0])
}

// checkNothingLeft reports what a deleted control plane left in its
// namespace. CertificateRequests go by garbage collection once their
// Certificate is gone, a moment after the ControlPlane: it allows a minute.
func checkNothingLeft(ctx context.Context, t *testing.T, c client.Client, ns, cp string) {
	t.Helper()
	var left []string
	for wait := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		if left = leftBehind(ctx, t, c, ns, cp); len(left) == 0 || time.Now().After(wait) {
			break
		}
	}
	for _, l := range left {
		t.Errorf("%s: %s left behind", cp, l)
	}
}

// leftBehind lists what a deleted control plane left in its namespace:
// any object of a kind the operator makes that carries its instance label,
// and any Certificate or Issuer named for it.
func leftBehind(ctx context.Context, t *testing.T, c client.Client, ns, cp string) []string {
	t.Helper()
	var left []string
	for _, kind := range []struct{ apiVersion, kind string }{
		{"apps/v1", "Deployment"}, {"apps/v1", "StatefulSet"}, {"apps/v1", "ReplicaSet"}, {"v1", "Service"}, {"v1", "Secret"},
		{"v1", "Pod"}, {"v1", "ConfigMap"}, {"v1", "ServiceAccount"}, {"policy/v1", "PodDisruptionBudget"},
		{"v1", "PersistentVolumeClaim"}, {"networking.k8s.io/v1", "NetworkPolicy"},
	} {
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion(kind.apiVersion)
		l.SetKind(kind.kind + "List")
		if err := c.List(ctx, l, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/instance": cp}); err != nil {
			t.Fatal(err)
		}
		for _, o := range l.Items {
			left = append(left, fmt.Sprintf("%s %s", kind.kind, o.GetName()))
		}
	}
	for _, kind := range []string{"Certificate", "Issuer", "CertificateRequest"} {
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion("cert-manager.io/v1")
		l.SetKind(kind + "List")
		if err := c.List(ctx, l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for _, o := range l.Items {
			if strings.HasPrefix(o.GetName(), cp+"-") {
				left = append(left, fmt.Sprintf("%s %s", kind, o.GetName()))
			}
		}
	}
	return left
}

// operatorMetrics is what the running controlplane operator serves on
// /metrics, read as a Prometheus would: with the token of a ServiceAccount
// (in ns, which goes with the test) bound to the chart's metrics-reader
// ClusterRole. Its certificate is the chart's self-signed default.
func operatorMetrics(ctx context.Context, t *testing.T, mgmt client.Client, ns string) string {
	t.Helper()
	r, err := localenv.NewMetricsReader(ctx, mgmt, ns, ns+"-metrics-reader")
	if r != nil {
		t.Cleanup(func() { _ = r.Close(context.Background()) })
	}
	if err != nil {
		t.Fatal(err)
	}
	text, err := r.Scrape(ctx, "marina-controlplane")
	if err != nil {
		// A pod starting or going: the caller polls.
		t.Logf("%v", err)
		return ""
	}
	return string(text)
}
