package node

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/marina-platform/marina/internal/localenv/cluster"
	"github.com/marina-platform/marina/internal/localenv/images"
	"github.com/marina-platform/marina/internal/localenv/network"
	"github.com/marina-platform/marina/internal/localenv/proc"
	"github.com/marina-platform/marina/internal/testenv"
)

// TestPodRunsAndServesThroughAService runs a real node: containerd, kubelet
// and kube-proxy in a network namespace, a pod from an image built and
// imported here, and a Service in front of it.
func TestPodRunsAndServesThroughAService(t *testing.T) {
	assets := os.Getenv(testenv.AssetsEnv)
	if assets == "" {
		t.Fatalf("%s is not set: run `make test`", testenv.AssetsEnv)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Images: a pause binary and the echo server, static, each on an empty base.
	var tarballs []string
	for _, img := range []struct{ pkg, ref, bin string }{
		{"./hack/pause", images.Registry + "/pause:test", "/pause"},
		{"./hack/echoserver", images.Registry + "/echoserver:test", "/echoserver"},
	} {
		bin := filepath.Join(dir, filepath.Base(img.pkg))
		build := exec.Command("go", "build", "-o", bin, img.pkg)
		build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", img.pkg, err, out)
		}
		tb := bin + ".tar"
		if err := images.WriteTarball(images.Spec{Ref: img.ref, Files: []images.File{{Path: img.bin, Source: bin, Mode: 0o755}}, Entrypoint: []string{img.bin}}, tb); err != nil {
			t.Fatal(err)
		}
		tarballs = append(tarballs, tb)
	}

	topo := network.Topology{Bridge: "mtest2", Chain: "MARINA-TEST2-FWD", Gateway: "10.235.0.1/16", PodSubnet: "10.234.0.0/16", ServiceSubnet: "10.233.0.0/16", VethPrefix: "vw-"}
	_, podCIDR, _ := net.ParseCIDR("10.234.1.0/24")
	cpHost := network.Host{Name: "mt-ncp", IP: net.ParseIP("10.235.0.2")}
	nodeHost := network.Host{Name: "mt-node", IP: net.ParseIP("10.235.0.10"), PodCIDR: podCIDR}
	t.Cleanup(func() { _ = topo.Delete(nodeHost, cpHost) })
	if err := topo.Ensure(cpHost, nodeHost); err != nil {
		t.Fatal(err)
	}

	c := cluster.Cluster{
		Name: "mt-node-cluster", NetNS: cpHost.Name, IP: cpHost.IP, APIPort: 6443, EtcdPort: 2379,
		ServiceCIDR: topo.ServiceSubnet, Controllers: true, Dir: filepath.Join(dir, "cluster"),
		Bin: cluster.BinariesIn(assets, filepath.Join(assets, "etcd")),
	}
	t.Cleanup(func() { _ = c.Stop() })
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}

	n := Node{
		Name: "mt-node-1", NetNS: nodeHost.Name, IP: nodeHost.IP, PodCIDR: podCIDR, ClusterCIDR: topo.PodSubnet,
		ClusterDNS: net.ParseIP("10.233.0.10"), Cluster: c, SandboxImage: images.Registry + "/pause:test",
		Dir: filepath.Join(dir, "node"),
		Bin: BinariesIn(assets),
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	if err := n.StartRuntime(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.ImportImages(ctx, tarballs...); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	waitFor(ctx, t, "node Ready", func() bool {
		node, err := cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return cond.Status == corev1.ConditionTrue
			}
		}
		return false
	}, filepath.Join(n.Dir, "kubelet.log"), filepath.Join(n.Dir, "containerd.log"))

	waitFor(ctx, t, "the default ServiceAccount", func() bool {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})
	labels := map[string]string{"app": "echo"}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "default", Labels: labels},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "echo", Image: images.Registry + "/echoserver:test", ImagePullPolicy: corev1.PullNever,
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
			}},
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			AutomountServiceAccountToken:  ptr.To(false),
		},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var podIP string
	waitFor(ctx, t, "pod Running", func() bool {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "echo", metav1.GetOptions{})
		if err != nil {
			return false
		}
		podIP = p.Status.PodIP
		return p.Status.Phase == corev1.PodRunning && podIP != ""
	}, filepath.Join(n.Dir, "kubelet.log"), filepath.Join(n.Dir, "containerd.log"))
	if !podCIDR.Contains(net.ParseIP(podIP)) {
		t.Errorf("pod IP %s is outside the node's pod CIDR %s", podIP, podCIDR)
	}

	// From the host, through the route to the node's pod subnet.
	if body := get(ctx, t, "http://"+net.JoinHostPort(podIP, "8080")); body != "hello from echo\n" {
		t.Errorf("pod answered %q", body)
	}

	svc, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "default"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Service IPs exist only where kube-proxy wrote its rules: inside the node.
	inNode := &http.Client{Transport: &http.Transport{DialContext: network.DialContext(n.NetNS)}}
	var body string
	waitFor(ctx, t, "Service answers inside the node", func() bool {
		body = getOnce(ctx, inNode, "http://"+net.JoinHostPort(svc.Spec.ClusterIP, "80"))
		return body == "hello from echo\n"
	}, filepath.Join(n.Dir, "kube-proxy.log"))

	// NetworkPolicies are enforced (kube-network-policies): a policy that
	// admits nothing to the pod makes it unreachable, one that admits the
	// host's network lets it answer again, and removing them restores it.
	pods := "http://" + net.JoinHostPort(podIP, "8080")
	// New connections only: an established one is let through by design.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "echo-isolated", Namespace: "default"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: labels},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
	if _, err := cs.NetworkingV1().NetworkPolicies("default").Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancelWait := context.WithTimeout(ctx, 45*time.Second)
	defer cancelWait()
	waitFor(waitCtx, t, "the isolated pod to stop answering", func() bool {
		return getOnce(ctx, fresh, pods) == ""
	}, filepath.Join(n.Dir, "kube-router.log"))
	_, hosts, err := net.ParseCIDR(topo.Gateway)
	if err != nil {
		t.Fatal(err)
	}
	allow := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "echo-from-hosts", Namespace: "default"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: labels},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: hosts.String()}}},
			}},
		},
	}
	if _, err := cs.NetworkingV1().NetworkPolicies("default").Create(ctx, allow, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the pod to answer the host again", func() bool {
		return getOnce(ctx, fresh, pods) == "hello from echo\n"
	}, filepath.Join(n.Dir, "kube-router.log"))

	if err := n.Stop(ctx); err != nil {
		t.Fatalf("stop node: %v", err)
	}
	for _, s := range n.Processes() {
		if _, ok := proc.Running(s); ok {
			t.Errorf("%s still runs", s.Name)
		}
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), n.Dir) {
		t.Errorf("mounts left under %s", n.Dir)
	}
	for _, h := range cgroupHierarchies {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", h, n.CgroupRoot())); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left behind in %s", n.CgroupRoot(), h)
		}
	}
}

// tail is the end of a log file, for failure messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// waitFor polls ok until it holds; on timeout it fails with the ends of
// the given log files, which say why far better than the timeout does.
func waitFor(ctx context.Context, t *testing.T, what string, ok func() bool, logs ...string) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			msg := "timed out waiting for " + what
			for _, l := range logs {
				msg += "\n--- " + l + ":\n" + tail(l)
			}
			t.Fatal(msg)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func get(ctx context.Context, t *testing.T, url string) string {
	t.Helper()
	var body string
	waitFor(ctx, t, "GET "+url, func() bool {
		body = getOnce(ctx, http.DefaultClient, url)
		return body != ""
	})
	return body
}

func getOnce(ctx context.Context, client *http.Client, url string) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("status %d", resp.StatusCode)
	}
	return string(b)
}
