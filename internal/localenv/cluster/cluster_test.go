package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/marina-platform/marina/internal/localenv/network"
	"github.com/marina-platform/marina/internal/localenv/proc"
	"github.com/marina-platform/marina/internal/testenv"
)

// binaries finds the from-source binaries `make test-binaries` links into
// the test assets folder.
func binaries(t *testing.T) Binaries {
	t.Helper()
	dir := os.Getenv(testenv.AssetsEnv)
	if dir == "" {
		t.Fatalf("%s is not set: run `make test`", testenv.AssetsEnv)
	}
	b := BinariesIn(dir, filepath.Join(dir, "etcd"))
	for _, p := range []string{b.Etcd, b.KubeAPIServer, b.KubeControllerManager, b.KubeScheduler} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%v (run `make test-binaries`)", err)
		}
	}
	return b
}

func TestClusterServesAndStopsCleanly(t *testing.T) {
	topo := network.Topology{Bridge: "mtest1", Chain: "MARINA-TEST1-FWD", Gateway: "10.237.0.1/16", PodSubnet: "10.236.0.0/16", ServiceSubnet: "10.241.0.0/16", VethPrefix: "vu-"}
	host := network.Host{Name: "mt-cp", IP: net.ParseIP("10.237.0.2")}
	t.Cleanup(func() { _ = topo.Delete(host) })
	if err := topo.Ensure(host); err != nil {
		t.Fatal(err)
	}

	c := Cluster{
		Name: "mt-cluster", NetNS: host.Name, IP: host.IP, APIPort: 6443, EtcdPort: 2379,
		ServiceCIDR: topo.ServiceSubnet, Controllers: true, Dir: t.TempDir(), Bin: binaries(t),
	}
	t.Cleanup(func() { _ = c.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// A second Start reuses the running processes and the PKI.
	kubeconfigBefore, _ := os.ReadFile(c.AdminKubeconfig())
	pidsBefore := pids(c)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if kubeconfigAfter, _ := os.ReadFile(c.AdminKubeconfig()); string(kubeconfigAfter) != string(kubeconfigBefore) {
		t.Error("second Start rewrote the admin kubeconfig")
	}
	for _, s := range c.Processes() {
		if pid, _ := proc.Running(s); pidsBefore[s.Name] != pid {
			// Say whether the first one died (its log says why) or was
			// taken for dead while it ran.
			_, err := os.Stat(fmt.Sprintf("/proc/%d", pidsBefore[s.Name]))
			t.Errorf("second Start restarted %s (pid %d, still there: %t); its log ends with:\n%s",
				s.Name, pidsBefore[s.Name], err == nil, proc.LogTail(s, 20))
		}
	}

	// The admin kubeconfig works from the host, and the controllers run:
	// the service account controller gives a new namespace its default
	// ServiceAccount.
	cfg, err := clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "marina-probe"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := cs.CoreV1().ServiceAccounts("marina-probe").Get(ctx, "default", metav1.GetOptions{}); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("kube-controller-manager never created the default ServiceAccount")
		}
		time.Sleep(300 * time.Millisecond)
	}

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, s := range c.Processes() {
		if _, ok := proc.Running(s); ok {
			t.Errorf("%s still runs after Stop", s.Name)
		}
	}
}

func pids(c Cluster) map[string]int {
	m := map[string]int{}
	for _, s := range c.Processes() {
		pid, _ := proc.Running(s)
		m[s.Name] = pid
	}
	return m
}
