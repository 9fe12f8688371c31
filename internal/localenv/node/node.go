// Package node runs a Kubernetes node without Docker: containerd, kubelet
// and kube-proxy inside a network namespace of their own, with a CNI bridge
// for pods and a cgroup root, sockets and folders that no other node shares.
// Images are imported from tarballs; nothing is ever pulled.
package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/marina-platform/marina/internal/localenv/cluster"
	"github.com/marina-platform/marina/internal/localenv/pki"
	"github.com/marina-platform/marina/internal/localenv/proc"
)

// cgroupHierarchies are the cgroup v1 controllers kubelet uses; each gets a
// folder per node so that nodes do not account or limit each other's pods.
// The kubelet also creates the root in the unified (v2) hierarchy, so it is
// listed for removal too.
var cgroupHierarchies = []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd", "unified"}

// Binaries are the programs a node runs.
type Binaries struct {
	Kubelet   string
	KubeProxy string
	// NetworkPolicy is kube-router (hack/tools/kube-router), run with only
	// its NetworkPolicy controller: the bridge CNI enforces no policy.
	NetworkPolicy string
	Containerd    string
	Ctr           string
	// CNIDir holds the CNI plugins (bridge, host-local, portmap, loopback).
	CNIDir string
}

// BinariesIn names kubelet and kube-proxy in kubeDir and the container
// runtime where Debian's packages install it (hack/ensure-deps.sh).
func BinariesIn(kubeDir string) Binaries {
	return Binaries{
		Kubelet:       filepath.Join(kubeDir, "kubelet"),
		KubeProxy:     filepath.Join(kubeDir, "kube-proxy"),
		NetworkPolicy: filepath.Join(kubeDir, "kube-router"),
		Containerd:    "/usr/bin/containerd",
		Ctr:           "/usr/bin/ctr",
		CNIDir:        "/usr/lib/cni",
	}
}

// Node is one Kubernetes node.
type Node struct {
	// Name of the Node object and of the node's processes and cgroups.
	Name  string
	NetNS string
	IP    net.IP
	// PodCIDR is the node's pod subnet; the host routes it to IP.
	PodCIDR *net.IPNet
	// ClusterCIDR contains every node's pod subnet, for kube-proxy.
	ClusterCIDR string
	// ClusterDNS is the Service IP of the cluster's DNS server.
	ClusterDNS net.IP
	// Cluster is the control plane the node registers with.
	Cluster cluster.Cluster
	// SandboxImage is the pause image, already imported by ImportImages.
	SandboxImage string
	Dir          string
	Bin          Binaries
}

func (n Node) socket() string { return filepath.Join(n.Dir, "containerd", "containerd.sock") }

// CgroupRoot is the node's cgroup root in every hierarchy, its pods below it.
func (n Node) CgroupRoot() string { return "/marina-" + n.Name }
func (n Node) kubeletRoot() string {
	return filepath.Join(n.Dir, "kubelet")
}

// Processes lists the node's processes in start order.
func (n Node) Processes() []proc.Spec {
	return []proc.Spec{
		{Name: "containerd", Path: n.Bin.Containerd, NetNS: n.NetNS, Dir: n.Dir,
			Args: []string{"--config", filepath.Join(n.Dir, "containerd.toml")}},
		{Name: "kubelet", Path: n.Bin.Kubelet, NetNS: n.NetNS, Dir: n.Dir,
			Args: []string{
				"--config=" + filepath.Join(n.Dir, "kubelet.yaml"),
				"--kubeconfig=" + filepath.Join(n.Dir, "kubelet.kubeconfig"),
				"--root-dir=" + n.kubeletRoot(),
				"--cert-dir=" + filepath.Join(n.Dir, "pki"),
				"--hostname-override=" + n.Name,
				"--node-ip=" + n.IP.String(),
				"--v=1",
			}},
		{Name: "kube-proxy", Path: n.Bin.KubeProxy, NetNS: n.NetNS, Dir: n.Dir,
			Args: []string{"--config=" + filepath.Join(n.Dir, "kube-proxy.yaml")}},
		{Name: "kube-router", Path: n.Bin.NetworkPolicy, NetNS: n.NetNS, Dir: n.Dir,
			Args: []string{
				"--kubeconfig=" + filepath.Join(n.Dir, "network-policy.kubeconfig"),
				"--hostname-override=" + n.Name,
				"--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
				"--enable-cni=false", "--health-port=0", "--metrics-port=0",
				"--v=1",
			}},
	}
}

// WriteConfig writes certificates, kubeconfigs and the configuration of
// containerd, CNI, kubelet and kube-proxy.
func (n Node) WriteConfig() error {
	for _, d := range []string{n.Dir, filepath.Join(n.Dir, "cni"), filepath.Join(n.Dir, "pki"), n.PodLogsDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	ca, err := n.Cluster.CA()
	if err != nil {
		return err
	}
	p := filepath.Join(n.Dir, "pki")
	certs := []struct {
		file string
		req  pki.Request
	}{
		{"kubelet-client", pki.Request{CommonName: "system:node:" + n.Name, Organizations: []string{"system:nodes"}, Client: true}},
		{"kubelet-serving", pki.Request{CommonName: n.Name, DNSNames: []string{n.Name}, IPs: []net.IP{n.IP}, Server: true}},
		{"kube-proxy", pki.Request{CommonName: "system:kube-proxy", Client: true}},
		{"network-policy", pki.Request{CommonName: cluster.NetworkPolicyUser, Client: true}},
	}
	for _, c := range certs {
		if _, err := os.Stat(filepath.Join(p, c.file+".crt")); err == nil {
			continue
		}
		kp, err := ca.Issue(c.req)
		if err != nil {
			return err
		}
		if err := kp.Write(p, c.file); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(p, "ca.crt"), ca.CertPEM(), 0o644); err != nil {
		return err
	}
	if err := n.Cluster.WriteKubeconfig(filepath.Join(n.Dir, "kubelet.kubeconfig"), filepath.Join(p, "kubelet-client")); err != nil {
		return err
	}
	if err := n.Cluster.WriteKubeconfig(filepath.Join(n.Dir, "kube-proxy.kubeconfig"), filepath.Join(p, "kube-proxy")); err != nil {
		return err
	}
	if err := n.Cluster.WriteKubeconfig(filepath.Join(n.Dir, "network-policy.kubeconfig"), filepath.Join(p, "network-policy")); err != nil {
		return err
	}

	files := map[string]string{
		"containerd.toml": n.containerdConfig(),
		"kubelet.yaml":    n.kubeletConfig(),
		"kube-proxy.yaml": n.kubeProxyConfig(),
	}
	cni, err := n.cniConfig()
	if err != nil {
		return err
	}
	files[filepath.Join("cni", "10-marina.conflist")] = cni
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(n.Dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (n Node) containerdConfig() string {
	d := filepath.Join(n.Dir, "containerd")
	return fmt.Sprintf(`version = 2
root = %q
state = %q

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # The sandbox lacks CAP_SYS_RESOURCE; without this runc fails with
  # "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, filepath.Join(d, "root"), filepath.Join(d, "state"), n.socket(), n.socket()+".ttrpc",
		filepath.Join(d, "opt"), n.SandboxImage, n.Bin.CNIDir, filepath.Join(n.Dir, "cni"))
}

func (n Node) cniConfig() (string, error) {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "marina-" + n.Name,
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": n.PodCIDR.String()}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": filepath.Join(n.Dir, "cni-ipam"),
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	return string(b), err
}

// PodLogsDir holds the logs of the node's containers.
func (n Node) PodLogsDir() string { return filepath.Join(n.Dir, "pod-logs") }

func (n Node) kubeletConfig() string {
	p := filepath.Join(n.Dir, "pki")
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %s}
authorization: {mode: Webhook}
tlsCertFile: %s
tlsPrivateKeyFile: %s
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
cgroupRoot: %s
failCgroupV1: false
failSwapOn: false
# Every node gets its own pod log folder: in the shared /var/log/pods each
# kubelet would remove the other nodes' logs as those of pods it does not know.
podLogsDir: %s
clusterDomain: cluster.local
clusterDNS: [%s]
resolvConf: ""
podCIDR: %s
maxPods: 60
serializeImagePulls: false
# The kubelet cannot read filesystem statistics of this machine's disk;
# low thresholds keep it from evicting everything.
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", nodefs.inodesFree: "1%%", imagefs.available: "1%%", imagefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
localStorageCapacityIsolation: false
protectKernelDefaults: false
`, n.IP, filepath.Join(p, "ca.crt"), filepath.Join(p, "kubelet-serving.crt"), filepath.Join(p, "kubelet-serving.key"),
		n.socket(), n.CgroupRoot(), n.PodLogsDir(), n.ClusterDNS, n.PodCIDR)
}

func (n Node) kubeProxyConfig() string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: %s}
hostnameOverride: %s
bindAddress: %s
clusterCIDR: %s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
iptables: {localhostNodePorts: false}
# Leave the machine's conntrack settings alone; the sandbox may not allow
# changing them.
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`, filepath.Join(n.Dir, "kube-proxy.kubeconfig"), n.Name, n.IP, n.ClusterCIDR)
}

// ensureCgroups creates the node's cgroup root in every hierarchy; cpuset
// needs its CPUs and memory nodes copied from the parent before use.
func (n Node) ensureCgroups() error {
	for _, h := range cgroupHierarchies {
		base := filepath.Join("/sys/fs/cgroup", h)
		if _, err := os.Stat(base); err != nil {
			continue
		}
		dir := filepath.Join(base, n.CgroupRoot())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", dir, err)
		}
		if h == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(base, f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					return fmt.Errorf("cgroup %s/%s: %w", dir, f, err)
				}
			}
		}
	}
	return nil
}

// StartRuntime writes the configuration and starts containerd, so that
// images can be imported before the kubelet asks for them.
func (n Node) StartRuntime(ctx context.Context) error {
	if err := n.WriteConfig(); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	if err := n.ensureCgroups(); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	if _, err := proc.Start(n.Processes()[0]); err != nil {
		return err
	}
	return n.waitRuntime(ctx)
}

// Start starts kubelet, kube-proxy and the NetworkPolicy enforcer (and
// containerd if needed). The enforcer identifies its node by the Node
// object, so it starts once the kubelet has registered it.
func (n Node) Start(ctx context.Context) error {
	if err := n.StartRuntime(ctx); err != nil {
		return err
	}
	specs := n.Processes()
	for i, s := range specs[1:] {
		if i+1 == len(specs)-1 {
			if err := n.waitRegistered(ctx); err != nil {
				return err
			}
		}
		if _, err := proc.Start(s); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return nil
}

// waitRegistered waits until the kubelet has created the Node object, read
// with the enforcer's own credentials. A kubelet on a loaded machine can give
// up early in its start (its first contact with a busy API server or
// containerd), so one that exited is started again, twice at most, and the
// error carries the end of its log.
func (n Node) waitRegistered(ctx context.Context) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(n.Dir, "network-policy.kubeconfig"))
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	kubelet := n.Processes()[1]
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var exits []string
	for {
		_, err := cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if _, ok := proc.Running(kubelet); !ok && len(exits) < 2 {
			exits = append(exits, "the kubelet exited; its log ended with:\n"+proc.LogTail(kubelet, 10))
			if _, err := proc.Start(kubelet); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("node %s: the kubelet did not register the Node in 3 minutes (last: %v)", n.Name, err)
			if len(exits) > 0 {
				msg += "\n" + strings.Join(exits, "\n")
			}
			return fmt.Errorf("%s\nkubelet log (%s) ends with:\n%s", msg, kubelet.LogFile(), proc.LogTail(kubelet, 15))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (n Node) waitRuntime(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		rt, closeFn, err := n.runtime(ctx)
		if err == nil {
			_, err = rt.Version(ctx, &runtimeapi.VersionRequest{})
			closeFn()
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: containerd did not answer on %s: %w (log: %s)", n.Name, n.socket(), err, filepath.Join(n.Dir, "containerd.log"))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (n Node) runtime(ctx context.Context) (runtimeapi.RuntimeServiceClient, func(), error) {
	conn, err := grpc.NewClient("unix://"+n.socket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	return runtimeapi.NewRuntimeServiceClient(conn), func() { _ = conn.Close() }, nil
}

// ImportImages loads image tarballs into the node's containerd, in the
// namespace the CRI uses.
func (n Node) ImportImages(ctx context.Context, tarballs ...string) error {
	for _, t := range tarballs {
		out, err := exec.CommandContext(ctx, n.Bin.Ctr, "--address", n.socket(), "--namespace", "k8s.io", "images", "import", t).CombinedOutput()
		if err != nil {
			return fmt.Errorf("node %s: import %s: %w: %s", n.Name, filepath.Base(t), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// Stop removes every pod sandbox through the CRI (so no network namespace
// of a pod stays mounted and busy), then stops kube-proxy and kube-router
// and cleans their rules, stops kubelet and unmounts what it mounted, stops containerd and
// removes the node's cgroups.
func (n Node) Stop(ctx context.Context) error {
	var errs []error
	specs := n.Processes()
	containerd, kubelet, kubeProxy, netpol := specs[0], specs[1], specs[2], specs[3]

	// kubelet would restart the pods we remove; stop it first.
	errs = append(errs, proc.Stop(kubelet, 20*time.Second))
	if _, ok := proc.Running(containerd); ok {
		errs = append(errs, n.removeSandboxes(ctx))
	}
	errs = append(errs, proc.Stop(kubeProxy, 10*time.Second))
	errs = append(errs, proc.Stop(netpol, 10*time.Second))
	if _, err := os.Stat(proc.NetNSPath(n.NetNS)); err == nil {
		// Remove the Service rules kube-proxy left in the namespace, and
		// kube-router's policy chains and ipsets.
		if out, err := exec.CommandContext(ctx, "nsenter", "--net="+proc.NetNSPath(n.NetNS), "--", n.Bin.KubeProxy, "--cleanup").CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("kube-proxy --cleanup: %w: %s", err, out))
		}
		// It cleans its NetworkPolicy controller's configuration first, then
		// crashes cleaning the service proxy's IPVS, which never ran here
		// (the kernel has none): only the first part's outcome counts.
		out, err := exec.CommandContext(ctx, "nsenter", "--net="+proc.NetNSPath(n.NetNS), "--", n.Bin.NetworkPolicy, "--cleanup-config").CombinedOutput()
		if err != nil && !strings.Contains(string(out), "Successfully cleaned the NetworkPolicyController configurations") {
			errs = append(errs, fmt.Errorf("kube-router --cleanup-config: %w: %s", err, out))
		}
	}
	errs = append(errs, proc.Stop(containerd, 20*time.Second))
	errs = append(errs, unmountUnder(n.Dir))
	errs = append(errs, n.removeCgroups())
	return errors.Join(errs...)
}

func (n Node) removeSandboxes(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	rt, closeFn, err := n.runtime(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("node %s: list pod sandboxes: %w", n.Name, err)
	}
	var errs []error
	for _, sb := range list.Items {
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("stop sandbox %s: %w", sb.Metadata.GetName(), err))
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("remove sandbox %s: %w", sb.Metadata.GetName(), err))
		}
	}
	return errors.Join(errs...)
}

// removeCgroups removes the node's cgroup folders, deepest first; a folder
// still holding a process cannot be removed and is reported.
func (n Node) removeCgroups() error {
	var errs []error
	for _, h := range cgroupHierarchies {
		root := filepath.Join("/sys/fs/cgroup", h, n.CgroupRoot())
		var dirs []string
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// unmountUnder unmounts every mount point below dir, deepest first: the
// kubelet bind-mounts its root folder onto itself and mounts volumes below.
func unmountUnder(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			points = append(points, fields[4])
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if out, err := exec.Command("umount", p).CombinedOutput(); err != nil && !strings.Contains(string(out), "not mounted") {
			errs = append(errs, fmt.Errorf("umount %s: %w: %s", p, err, out))
		}
	}
	return errors.Join(errs...)
}
