package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/localenv"
	"github.com/marina-platform/marina/internal/localenv/localpath"
	"github.com/marina-platform/marina/internal/localenv/proc"
)

// checkKilledProcesses crashes a control plane's etcd and then its API
// server, each by SIGKILL to the container's process (what an OOM kill or a
// crash does), and checks that each container is restarted, the control
// plane serves again and every object is still there: the ConfigMaps and
// namespaces are counted before and after. The control plane must run local
// etcd with one member.
func checkKilledProcesses(ctx context.Context, t *testing.T, mgmt, fed client.Client, ns, cp string) {
	t.Helper()
	const marked = "e2e-faults"
	mustCreate(ctx, t, fed, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: marked}})
	for i := range 20 {
		mustCreate(ctx, t, fed, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: marked, Name: fmt.Sprintf("cm-%d", i)}, Data: map[string]string{"i": strconv.Itoa(i)}})
	}
	count := func() (int, int, error) { return countObjects(ctx, fed) }
	wantCMs, wantNSs, err := count()
	if err != nil {
		t.Fatal(err)
	}
	// Both processes name the etcd member in their flags.
	member := fmt.Sprintf("%s-etcd-0.%s-etcd.%s.", cp, cp, ns)
	for _, victim := range []struct{ component, container, binary string }{
		{"etcd", "etcd", "etcd"},
		{"apiserver", "kube-apiserver", "kube-apiserver"},
	} {
		pod, restarts := containerRestarts(ctx, t, mgmt, ns, cp, victim.component, victim.container)
		pid := findProcess(t, victim.binary, member)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s of %s (pid %d): %v", victim.binary, pod, pid, err)
		}
		start := time.Now()
		waitFor(ctx, t, victim.container+" of "+pod+" to be restarted and ready", func() bool {
			p := &corev1.Pod{}
			if mgmt.Get(ctx, client.ObjectKey{Namespace: ns, Name: pod}, p) != nil {
				return false
			}
			for _, c := range p.Status.ContainerStatuses {
				if c.Name == victim.container {
					return c.RestartCount > restarts && c.Ready
				}
			}
			return false
		})
		var gotCMs, gotNSs int
		waitFor(ctx, t, cp+" to serve again after its "+victim.container+" was killed", func() bool {
			gotCMs, gotNSs, err = count()
			return err == nil
		})
		t.Logf("killed %s in %s (pid %d): restarted and serving again in %s; ConfigMaps %d → %d, namespaces %d → %d",
			victim.container, pod, pid, time.Since(start).Round(time.Second), wantCMs, gotCMs, wantNSs, gotNSs)
		if gotCMs != wantCMs || gotNSs != wantNSs {
			t.Errorf("after killing %s: %d ConfigMaps and %d namespaces, want %d and %d", victim.container, gotCMs, gotNSs, wantCMs, wantNSs)
		}
	}
}

// countObjects counts a federation's ConfigMaps and namespaces, which the
// fault tests compare before and after.
func countObjects(ctx context.Context, fed client.Client) (configMaps, namespaces int, err error) {
	cms, nss := &corev1.ConfigMapList{}, &corev1.NamespaceList{}
	if err := fed.List(ctx, cms); err != nil {
		return 0, 0, err
	}
	if err := fed.List(ctx, nss); err != nil {
		return 0, 0, err
	}
	return len(cms.Items), len(nss.Items), nil
}

// checkDeletedEtcdPod deletes the pod of a one-member local etcd on a
// PersistentVolumeClaim, as a node drain or an eviction does: the
// StatefulSet makes a new pod on the same claim, so the control plane serves
// again with every object (counted before and after). On emptyDir this would
// lose everything.
func checkDeletedEtcdPod(ctx context.Context, t *testing.T, mgmt, fed client.Client, ns, cp string) {
	t.Helper()
	wantCMs, wantNSs, err := countObjects(ctx, fed)
	if err != nil {
		t.Fatal(err)
	}
	old := &corev1.Pod{}
	key := client.ObjectKey{Namespace: ns, Name: cp + "-etcd-0"}
	if err := mgmt.Get(ctx, key, old); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := mgmt.Delete(ctx, old); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "a new "+key.Name+" to be ready", func() bool {
		p := &corev1.Pod{}
		return mgmt.Get(ctx, key, p) == nil && p.UID != old.UID && podReady(p)
	})
	var gotCMs, gotNSs int
	waitFor(ctx, t, cp+" to serve again after its etcd pod was deleted", func() bool {
		gotCMs, gotNSs, err = countObjects(ctx, fed)
		return err == nil
	})
	t.Logf("deleted pod %s: a new one serving in %s; ConfigMaps %d → %d, namespaces %d → %d",
		key.Name, time.Since(start).Round(time.Second), wantCMs, gotCMs, wantNSs, gotNSs)
	if gotCMs != wantCMs || gotNSs != wantNSs {
		t.Errorf("after deleting the etcd pod: %d ConfigMaps and %d namespaces, want %d and %d", gotCMs, gotNSs, wantCMs, wantNSs)
	}
}

// localVolume checks that a pod's data claim is bound by the default
// StorageClass's provisioner to a folder on the data center's node, and
// returns its PersistentVolume.
func localVolume(ctx context.Context, t *testing.T, mgmt client.Client, ns, pod string, dc localenv.DataCenter) *corev1.PersistentVolume {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{}
	if err := mgmt.Get(ctx, client.ObjectKey{Namespace: ns, Name: "data-" + pod}, pvc); err != nil {
		t.Fatal(err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != localpath.StorageClassName {
		t.Fatalf("claim %s: phase %s, class %v; want Bound by the default class %s", pvc.Name, pvc.Status.Phase, pvc.Spec.StorageClassName, localpath.StorageClassName)
	}
	pv := &corev1.PersistentVolume{}
	if err := mgmt.Get(ctx, client.ObjectKey{Name: pvc.Spec.VolumeName}, pv); err != nil {
		t.Fatal(err)
	}
	if pv.Spec.HostPath == nil || !strings.HasPrefix(pv.Spec.HostPath.Path, localenv.StorageDir(dc.Node)+"/") {
		t.Fatalf("volume %s: %+v, want a folder under %s", pv.Name, pv.Spec.PersistentVolumeSource, localenv.StorageDir(dc.Node))
	}
	if fi, err := os.Stat(pv.Spec.HostPath.Path); err != nil || !fi.IsDir() {
		t.Fatalf("volume %s's folder: %v", pv.Name, err)
	}
	return pv
}

// containerRestarts is the pod of a control plane's component and the
// restart count of one of its containers.
func containerRestarts(ctx context.Context, t *testing.T, mgmt client.Client, ns, cp, component, container string) (string, int32) {
	t.Helper()
	pods := &corev1.PodList{}
	if err := mgmt.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/instance": cp, "app.kubernetes.io/component": component}); err != nil || len(pods.Items) != 1 {
		t.Fatalf("want one %s pod of %s, got %d (%v)", component, cp, len(pods.Items), err)
	}
	for _, c := range pods.Items[0].Status.ContainerStatuses {
		if c.Name == container {
			return pods.Items[0].Name, c.RestartCount
		}
	}
	t.Fatalf("pod %s has no container %s", pods.Items[0].Name, container)
	return "", 0
}

// findProcess is the one process on this machine whose program is binary
// and whose command line holds match: a container's main process, which
// runs here as every node's containers do.
func findProcess(t *testing.T, binary string, match ...string) int {
	t.Helper()
	found := processes(binary, match...)
	if len(found) != 1 {
		t.Fatalf("want one %s process naming %q, found %v", binary, match, found)
	}
	return found[0]
}

// processes are the PIDs of the processes of a binary whose command lines
// contain every match.
func processes(binary string, match ...string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var found []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		args := bytes.Split(cmdline, []byte{0})
		if filepath.Base(string(args[0])) != binary {
			continue
		}
		all := true
		for _, m := range match {
			all = all && bytes.Contains(cmdline, []byte(m))
		}
		if all {
			found = append(found, pid)
		}
	}
	return found
}

// TestCreateWithAnExternalEtcdMemberDown creates a control plane on the
// shared external etcd while one of its three members is stopped: it
// becomes Ready and stores data on the two left, and after the member is
// back and the control plane deleted (deletionPolicy Delete) none of its
// keys remain.
func TestCreateWithAnExternalEtcdMemberDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dc := env.DataCenters()[0]
	mgmt := mgmtClient(t, dc.Kubeconfig())
	ns := tenantNamespace(ctx, t, mgmt, "e2e-etcd-down")

	etcd := env.ExternalEtcd()
	member := etcd.Processes()[1]
	t.Cleanup(func() { _ = etcd.Start(context.Background()) })
	if err := proc.Stop(member, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	cp, err := env.ControlPlane(dc, ns, "epsilon")
	if err != nil {
		t.Fatal(err)
	}
	cp.Spec.DeletionPolicy = marinav1alpha1.DeletionPolicyDelete
	start := time.Now()
	mustCreate(ctx, t, mgmt, cp)
	waitReady(ctx, t, mgmt, cp, 5*time.Minute)
	t.Logf("Ready %s after creation with etcd member %s stopped", time.Since(start).Round(time.Second), member.Name)
	envCA, err := env.CA()
	if err != nil {
		t.Fatal(err)
	}
	fed := federationClient(ctx, t, mgmt, dc, cp, envCA.Cert)
	mustCreate(ctx, t, fed, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "written-with-a-member-down"}})

	if err := etcd.Start(ctx); err != nil {
		t.Fatalf("restart %s: %v", member.Name, err)
	}
	if n, _ := etcd.Healthy(ctx); n != etcd.Members {
		t.Errorf("%d of %d members healthy after the restart", n, etcd.Members)
	}
	cli, err := etcd.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	prefix := etcdPrefix(cp) + "/"
	before, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if err := mgmt.Delete(ctx, cp); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "ControlPlane epsilon to be deleted", func() bool {
		return apierrors.IsNotFound(mgmt.Get(ctx, client.ObjectKeyFromObject(cp), &marinav1alpha1.ControlPlane{}))
	})
	after, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keys under %s: %d while it ran, %d after the delete", prefix, before.Count, after.Count)
	if before.Count == 0 || after.Count != 0 {
		t.Errorf("keys under %s: %d while it ran (want some), %d after the delete (want none)", prefix, before.Count, after.Count)
	}
}
