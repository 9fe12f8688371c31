// Package localenv runs Marina's local multi-data-center environment on one
// machine without Docker: per data center a management cluster (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler as processes) and
// a real node (containerd, kubelet, kube-proxy in a network namespace).
//
// The layout is computed from Options alone, so Down and Status find every
// part again from the options recorded by Up. cmd/marina-dev is its command
// line; the end-to-end tests use it as a library.
package localenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/marina-platform/marina/internal/localenv/certmanager"
	"github.com/marina-platform/marina/internal/localenv/cluster"
	"github.com/marina-platform/marina/internal/localenv/coredns"
	"github.com/marina-platform/marina/internal/localenv/etcdcluster"
	"github.com/marina-platform/marina/internal/localenv/images"
	"github.com/marina-platform/marina/internal/localenv/localpath"
	"github.com/marina-platform/marina/internal/localenv/network"
	"github.com/marina-platform/marina/internal/localenv/node"
	"github.com/marina-platform/marina/internal/localenv/proc"
)

// The environment's address plan. Namespaces sit on one host bridge in
// 10.210.0.0/16 (data center N uses 10.210.N.0/24); node N of data center D
// gets pod subnet 10.220.(D*10+N).0/24; every cluster's Services use
// 10.96.0.0/16, which only exists inside nodes.
const (
	bridgeName    = "marina0"
	chainName     = "MARINA-FORWARD"
	gateway       = "10.210.0.1/16"
	podSubnet     = "10.220.0.0/16"
	serviceSubnet = "10.96.0.0/16"
	clusterDNS    = "10.96.0.10"
)

// SandboxImage is the pause image every node's containerd uses.
const SandboxImage = images.Registry + "/pause:v1"

// Options choose the environment's size and where it keeps its files.
type Options struct {
	// DataCenters is the number of data centers, 1 to 9.
	DataCenters int `json:"dataCenters"`
	// Members is the number of member clusters per data center, 0 to 5;
	// the first one has a node.
	Members int `json:"members"`
	// Dir holds everything the environment writes; Down removes it.
	Dir string `json:"dir"`
	// BinDir holds the binaries the Makefile builds from source:
	// kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
	// kube-proxy, kubectl, etcd, cert-manager-controller, vault, coredns
	// and helm.
	BinDir string `json:"binDir"`
	// RepoRoot is Marina's source tree, for building images.
	RepoRoot string `json:"repoRoot"`
}

// DefaultDir is where the environment lives unless told otherwise;
// kubeconfigs are at <dir>/<data center>/kubeconfig.
func DefaultDir() string {
	if d := os.Getenv("MARINA_LOCAL_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".marina", "local")
}

// Validate checks the options before anything is created.
func (o Options) Validate() error {
	if o.DataCenters < 1 || o.DataCenters > 9 {
		return fmt.Errorf("data centers: %d is not between 1 and 9", o.DataCenters)
	}
	if o.Members < 0 || o.Members > 5 {
		return fmt.Errorf("members: %d is not between 0 and 5", o.Members)
	}
	if o.Dir == "" || !filepath.IsAbs(o.Dir) {
		return fmt.Errorf("dir %q must be an absolute path", o.Dir)
	}
	if o.BinDir == "" {
		return fmt.Errorf("bin dir: empty; `make up` passes the folder of binaries it builds")
	}
	return nil
}

// DataCenter is one data center's management cluster, its node and its
// member clusters.
type DataCenter struct {
	Name string
	// Host is the namespace of the management cluster's control plane; the
	// member clusters' control planes share it on other ports.
	Host    network.Host
	Cluster cluster.Cluster
	// NodeHost and Node are the management cluster's node.
	NodeHost network.Host
	Node     node.Node
	Members  []Member
}

// Member is a member cluster: an API server, etcd and the controllers, and
// for the first member of each data center a node so that workloads run.
type Member struct {
	Cluster  cluster.Cluster
	NodeHost *network.Host
	Node     *node.Node
}

// SharedHost is the namespace of the services every data center uses.
var SharedHost = network.Host{Name: "m-shared", IP: net.IPv4(10, 210, 0, 2)}

// ExternalEtcd is the three-member etcd cluster with mutual TLS and
// authentication that control planes share through each data center's
// DataStore, each under its own key prefix and etcd user.
func (e *Env) ExternalEtcd() etcdcluster.Cluster {
	return etcdcluster.Cluster{
		Name: "external-etcd", NetNS: SharedHost.Name, IP: SharedHost.IP, Members: 3, BasePort: 2379,
		Dir: filepath.Join(e.opts.Dir, "shared", "external-etcd"), Etcd: e.bin("etcd"), Auth: true,
	}
}

// Kubeconfig is the stable path of the data center's admin kubeconfig.
func (dc DataCenter) Kubeconfig() string { return dc.Cluster.AdminKubeconfig() }

// Env is a local environment.
type Env struct {
	opts Options
	topo network.Topology
	// Out receives progress lines; nil discards them.
	Out io.Writer
}

// New lays out an environment for opts.
func New(opts Options) (*Env, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Env{opts: opts, topo: Topology()}, nil
}

// Topology is the environment's network.
func Topology() network.Topology {
	return network.Topology{
		Bridge: bridgeName, Chain: chainName, Gateway: gateway,
		PodSubnet: podSubnet, ServiceSubnet: serviceSubnet, VethPrefix: "mv-",
	}
}

// Load finds the environment that Up recorded in dir.
func Load(dir string) (*Env, error) {
	data, err := os.ReadFile(filepath.Join(dir, "env.json"))
	if err != nil {
		return nil, fmt.Errorf("no local environment in %s (run `make up`): %w", dir, err)
	}
	var opts Options
	if err := json.Unmarshal(data, &opts); err != nil {
		return nil, fmt.Errorf("%s/env.json: %w", dir, err)
	}
	return New(opts)
}

// bin is the path of one of the binaries the Makefile builds.
func (e *Env) bin(name string) string { return filepath.Join(e.opts.BinDir, name) }

// Options the environment was laid out with.
func (e *Env) Options() Options { return e.opts }

// DataCenters lists the data centers, dc1 first.
func (e *Env) DataCenters() []DataCenter {
	var dcs []DataCenter
	for i := 1; i <= e.opts.DataCenters; i++ {
		name := fmt.Sprintf("dc%d", i)
		dir := filepath.Join(e.opts.Dir, name)
		host := network.Host{Name: "m-" + name, IP: net.IPv4(10, 210, byte(i), 2)}
		_, podCIDR, _ := net.ParseCIDR(fmt.Sprintf("10.220.%d.0/24", i*10+1))
		nodeHost := network.Host{Name: "m-" + name + "-n1", IP: net.IPv4(10, 210, byte(i), 10), PodCIDR: podCIDR}
		c := cluster.Cluster{
			Name: name, NetNS: host.Name, IP: host.IP, APIPort: 6443, EtcdPort: 2379,
			ServiceCIDR: serviceSubnet, Controllers: true, Dir: dir,
			Bin: cluster.BinariesIn(e.opts.BinDir, e.bin("etcd")),
		}
		n := node.Node{
			Name: name + "-node-1", NetNS: nodeHost.Name, IP: nodeHost.IP, PodCIDR: podCIDR,
			ClusterCIDR: podSubnet, ClusterDNS: net.ParseIP(clusterDNS), Cluster: c,
			SandboxImage: SandboxImage, Dir: filepath.Join(dir, "node-1"),
			Bin: node.BinariesIn(e.opts.BinDir),
		}
		dc := DataCenter{Name: name, Host: host, Cluster: c, NodeHost: nodeHost, Node: n}
		for j := 1; j <= e.opts.Members; j++ {
			apiPort, etcdPort := memberPorts(j)
			mc := c
			mc.Name = fmt.Sprintf("%s-member-%d", name, j)
			mc.APIPort, mc.EtcdPort = apiPort, etcdPort
			mc.Dir = filepath.Join(dir, "members", mc.Name)
			// Every member runs kube-controller-manager, as every real
			// cluster does: a join relies on its token controller.
			mc.Controllers = true
			m := Member{Cluster: mc}
			if j == 1 {
				_, memberPods, _ := net.ParseCIDR(fmt.Sprintf("10.220.%d.0/24", i*10+2))
				h := network.Host{Name: "m-" + name + "-m1", IP: net.IPv4(10, 210, byte(i), 20), PodCIDR: memberPods}
				mn := n
				mn.Name, mn.NetNS, mn.IP, mn.PodCIDR = mc.Name+"-node-1", h.Name, h.IP, memberPods
				mn.Cluster, mn.Dir = mc, filepath.Join(mc.Dir, "node-1")
				m.NodeHost, m.Node = &h, &mn
			}
			dc.Members = append(dc.Members, m)
		}
		dcs = append(dcs, dc)
	}
	return dcs
}

// Nodes lists every node of the data center: the management cluster's and
// the members'.
func (dc DataCenter) Nodes() []node.Node {
	ns := []node.Node{dc.Node}
	for _, m := range dc.Members {
		if m.Node != nil {
			ns = append(ns, *m.Node)
		}
	}
	return ns
}

// Hosts lists every network namespace of the data center.
func (dc DataCenter) Hosts() []network.Host {
	hs := []network.Host{dc.Host, dc.NodeHost}
	for _, m := range dc.Members {
		if m.NodeHost != nil {
			hs = append(hs, *m.NodeHost)
		}
	}
	return hs
}

// Up creates whatever is missing and waits until every data center's API
// server answers and its node is Ready. A second Up only checks.
func (e *Env) Up(ctx context.Context) error {
	p := newProgress(e.Out)
	// Down finds what to remove from the recorded layout: a different
	// layout would leave the old one's parts behind.
	if running, err := Load(e.opts.Dir); err == nil {
		r := running.Options()
		if r.DataCenters != e.opts.DataCenters || r.Members != e.opts.Members {
			return fmt.Errorf("an environment with %d data centers and %d members each is already in %s; run `make down` before changing its size",
				r.DataCenters, r.Members, e.opts.Dir)
		}
	}
	if err := os.MkdirAll(e.opts.Dir, 0o755); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(e.opts, "", "  ")
	if err := os.WriteFile(filepath.Join(e.opts.Dir, "env.json"), data, 0o644); err != nil {
		return err
	}
	dcs := e.DataCenters()

	var versions Versions
	var built []builtImage
	var operatorTag string
	if err := p.step("build images (pause, echoserver, etcd, kube-apiserver, kube-controller-manager, kube-scheduler, CoreDNS, local-path-provisioner, Marina's operators and KMS plugin)", func() (err error) {
		if versions, err = ReadVersions(e.opts.RepoRoot); err != nil {
			return err
		}
		if built, operatorTag, err = e.buildImages(ctx, versions); err != nil {
			return err
		}
		extra, err := engineImages()
		built = append(built, extra...)
		return err
	}); err != nil {
		return err
	}
	var capiCRDs string
	var certManagerCRDs []string
	if err := p.step("fetch Cluster API "+ClusterAPIVersion+" and cert-manager "+versions.CertManager+" CRDs", func() (err error) {
		if capiCRDs, err = ClusterAPICRDs(ctx); err != nil {
			return err
		}
		certManagerCRDs, err = certmanager.CRDs(ctx, e.opts.RepoRoot)
		return err
	}); err != nil {
		return err
	}
	if err := p.step("network: bridge "+bridgeName+", forward rules", e.topo.EnsureBridge); err != nil {
		return err
	}
	if err := e.startShared(ctx, p); err != nil {
		return err
	}
	kubectl := e.bin("kubectl")
	for _, dc := range dcs {
		if err := p.step(dc.Name+": namespaces", func() error {
			var errs []error
			for _, h := range dc.Hosts() {
				errs = append(errs, e.topo.EnsureHost(h))
			}
			return errors.Join(errs...)
		}); err != nil {
			return err
		}
		if err := p.step(dc.Name+": management cluster at "+dc.Cluster.Server(), func() error {
			return dc.Cluster.Start(ctx)
		}); err != nil {
			return err
		}
		if err := p.step(dc.Name+": install Marina's and Cluster API's CRDs", func() error {
			return errors.Join(
				kubectlApply(ctx, kubectl, dc.Kubeconfig(), filepath.Join(e.opts.RepoRoot, "charts", "marina", "crds")),
				kubectlApply(ctx, kubectl, dc.Kubeconfig(), capiCRDs))
		}); err != nil {
			return err
		}
		if err := p.step(dc.Name+": cert-manager controllers and ClusterIssuer "+ClusterIssuerName, func() error {
			return e.startCertManager(ctx, dc, certManagerCRDs)
		}); err != nil {
			return err
		}
		for _, m := range dc.Members {
			if err := p.step(dc.Name+": member cluster "+m.Cluster.Name+" at "+m.Cluster.Server(), func() error {
				return m.Cluster.Start(ctx)
			}); err != nil {
				return err
			}
		}
		for _, n := range dc.Nodes() {
			if err := p.step(dc.Name+": node "+n.Name+" (containerd, images, kubelet, kube-proxy)", func() error {
				if err := n.StartRuntime(ctx); err != nil {
					return err
				}
				if err := importImages(ctx, n, built); err != nil {
					return err
				}
				return n.Start(ctx)
			}); err != nil {
				return err
			}
		}
	}
	for _, dc := range dcs {
		for _, n := range dc.Nodes() {
			if err := p.step(dc.Name+": wait for node "+n.Name+" Ready", func() error { return waitNodeReady(ctx, n) }); err != nil {
				return err
			}
			if err := p.step(dc.Name+": CoreDNS for cluster.local in "+n.Cluster.Name, func() error {
				return deployCoreDNS(ctx, n.Cluster.AdminKubeconfig(), versions)
			}); err != nil {
				return err
			}
			if err := p.step(dc.Name+": default StorageClass "+localpath.StorageClassName+" (local-path-provisioner) in "+n.Cluster.Name, func() error {
				return deployStorage(ctx, n, versions)
			}); err != nil {
				return err
			}
		}
		if len(dc.Members) > 0 {
			if err := p.step(dc.Name+": Cluster API Clusters and kubeconfig Secrets of the members", func() error {
				mgmt, err := controllerClient(dc.Kubeconfig())
				if err != nil {
					return err
				}
				for _, m := range dc.Members {
					if err := registerMember(ctx, mgmt, dc.Name, m); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				return err
			}
		}
		if err := p.step(dc.Name+": helm install charts/marina (operators "+operatorTag+")", func() error {
			return e.installMarina(ctx, dc, operatorTag)
		}); err != nil {
			return err
		}
		if err := p.step(dc.Name+": DataStore "+DataStoreName+" (the shared external etcd)", func() error {
			return e.ensureDataStore(ctx, dc)
		}); err != nil {
			return err
		}
	}
	if len(dcs) > 1 {
		if err := p.step("peering: every data center's management cluster a Peer of every other's", func() error {
			if err := e.connectPeers(ctx); err != nil {
				return err
			}
			return e.WaitPeersReady(ctx, 2*time.Minute)
		}); err != nil {
			return err
		}
	}
	p.done("environment up")
	return nil
}

// waitNodeReady waits for the node's Ready condition. A node process that
// exits meanwhile is started again, at most twice, as systemd does for the
// kubelet on a real machine; a slow machine can make the kubelet give up
// early in its start (its first contact with a busy API server or
// containerd). A node that stays not Ready is reported with what the
// kubelet says and the end of its log, so the reason is in the error.
func waitNodeReady(ctx context.Context, n node.Node) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cs, err := clientset(n.Cluster.AdminKubeconfig())
	if err != nil {
		return err
	}
	restarts := map[string]int{}
	var exits []string
	why := ""
	for {
		ready, now := nodeReady(ctx, cs, n.Name)
		if ready {
			return nil
		}
		if ctx.Err() == nil {
			why = now
		}
		for _, s := range n.Processes() {
			if _, ok := proc.Running(s); ok || restarts[s.Name] == 2 {
				continue
			}
			restarts[s.Name]++
			exits = append(exits, fmt.Sprintf("%s exited; its log ended with:\n%s", s.Name, proc.LogTail(s, 10)))
			if _, err := proc.Start(s); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
		select {
		case <-ctx.Done():
			kubelet := n.Processes()[1]
			msg := fmt.Sprintf("node %s not Ready within 3m: %s", n.Name, why)
			if len(exits) > 0 {
				msg += "\n" + strings.Join(exits, "\n")
			}
			return fmt.Errorf("%s\nkubelet log (%s) ends with:\n%s", msg, kubelet.LogFile(), proc.LogTail(kubelet, 15))
		case <-time.After(time.Second):
		}
	}
}

// nodeReady reports whether the node is Ready and, when not, why.
func nodeReady(ctx context.Context, cs kubernetes.Interface, name string) (bool, string) {
	n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, "the kubelet never registered the node"
	}
	if err != nil {
		return false, err.Error()
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue, fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
		}
	}
	return false, "the node has no Ready condition yet"
}

func clientset(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 5 * time.Second
	return kubernetes.NewForConfig(cfg)
}

// Down stops every process, removes every namespace, veth, bridge, route,
// iptables chain, cgroup and mount the environment made, and then its
// folder. It goes on past errors and reports them all.
func (e *Env) Down(ctx context.Context) error {
	p := newProgress(e.Out)
	var errs []error
	dcs := e.DataCenters()
	for i := len(dcs) - 1; i >= 0; i-- {
		dc := dcs[i]
		for _, n := range dc.Nodes() {
			errs = append(errs, p.step(dc.Name+": stop node "+n.Name, func() error { return n.Stop(ctx) }))
		}
		for _, m := range dc.Members {
			errs = append(errs, p.step(dc.Name+": stop member cluster "+m.Cluster.Name, m.Cluster.Stop))
		}
		errs = append(errs, p.step(dc.Name+": stop cert-manager", e.CertManager(dc).Stop))
		errs = append(errs, p.step(dc.Name+": stop management cluster", dc.Cluster.Stop))
		errs = append(errs, p.step(dc.Name+": remove namespaces", func() error {
			var errs []error
			for _, h := range dc.Hosts() {
				errs = append(errs, e.topo.DeleteHost(h))
			}
			return errors.Join(errs...)
		}))
	}
	errs = append(errs, p.step("shared: stop CRD bundle server", func() error { return proc.Stop(e.bundleServer(), 5*time.Second) }))
	errs = append(errs, p.step("shared: stop Vault", e.Vault().Stop))
	errs = append(errs, p.step("shared: stop external etcd", e.ExternalEtcd().Stop))
	errs = append(errs, p.step("shared: remove namespace", func() error { return e.topo.DeleteHost(SharedHost) }))
	errs = append(errs, p.step("network: remove bridge and forward rules", e.topo.DeleteBridge))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("some parts could not be removed; %s is kept for a look: %w", e.opts.Dir, err)
	}
	errs = append(errs, p.step("remove "+e.opts.Dir, func() error { return os.RemoveAll(e.opts.Dir) }))
	p.done("environment down")
	return errors.Join(errs...)
}

// StopDataCenter stops one data center as a power cut would, keeping its
// data: its nodes with every pod on them (the federation control planes
// among them), cert-manager and the management cluster. Its member
// clusters keep running: they are clusters of their own, which the other
// data centers' control planes reach. Up starts it again.
func (e *Env) StopDataCenter(ctx context.Context, name string) error {
	for _, dc := range e.DataCenters() {
		if dc.Name != name {
			continue
		}
		return errors.Join(dc.Node.Stop(ctx), e.CertManager(dc).Stop(), dc.Cluster.Stop())
	}
	return fmt.Errorf("no data center %s", name)
}

// Part is the health of one part of the environment.
type Part struct {
	DataCenter string `json:"dataCenter"`
	Name       string `json:"name"`
	Healthy    bool   `json:"healthy"`
	Detail     string `json:"detail"`
}

// Status checks every process and endpoint once.
func (e *Env) Status(ctx context.Context) []Part {
	var parts []Part
	etcd := e.ExternalEtcd()
	for _, s := range etcd.Processes() {
		parts = append(parts, processPart("shared", s.Name, s))
	}
	healthy, err := etcd.Healthy(ctx)
	etcdPart := Part{DataCenter: "shared", Name: "external-etcd cluster", Healthy: healthy == etcd.Members,
		Detail: fmt.Sprintf("%d of %d members healthy", healthy, etcd.Members)}
	if err != nil && healthy < etcd.Members {
		etcdPart.Detail += ": " + err.Error()
	}
	parts = append(parts, etcdPart)
	vaultPart := Part{DataCenter: "shared", Name: "vault (transit)", Detail: e.Vault().URL()}
	if err := e.Vault().Healthy(ctx); err != nil {
		vaultPart.Detail += ": " + err.Error()
	} else {
		vaultPart.Healthy = true
	}
	parts = append(parts, vaultPart)
	parts = append(parts, processPart("shared", "crd-bundle-server", e.bundleServer()))
	for _, dc := range e.DataCenters() {
		clusters := []cluster.Cluster{dc.Cluster}
		for _, m := range dc.Members {
			clusters = append(clusters, m.Cluster)
		}
		for _, c := range clusters {
			specs := c.Processes()
			for _, n := range dc.Nodes() {
				if n.Cluster.Name == c.Name {
					specs = append(specs, n.Processes()...)
				}
			}
			for _, s := range specs {
				parts = append(parts, processPart(dc.Name, c.Name+" "+s.Name, s))
			}
			api := Part{DataCenter: dc.Name, Name: c.Name + " api-server", Detail: c.Server()}
			if err := c.Healthy(ctx); err != nil {
				api.Detail += ": " + err.Error()
			} else {
				api.Healthy = true
			}
			parts = append(parts, api)
		}
		parts = append(parts, processPart(dc.Name, dc.Cluster.Name+" cert-manager", e.CertManager(dc).Process()))
		parts = append(parts, deploymentParts(ctx, dc.Name, dc.Cluster.Name, dc.Kubeconfig(), MarinaNamespace, operatorDeployments()...)...)
		if others := len(e.DataCenters()) - 1; others > 0 {
			parts = append(parts, peerParts(ctx, dc, others)...)
		}
		for _, n := range dc.Nodes() {
			parts = append(parts, deploymentParts(ctx, dc.Name, n.Cluster.Name, n.Cluster.AdminKubeconfig(), "kube-system", coredns.Name)...)
			parts = append(parts, deploymentParts(ctx, dc.Name, n.Cluster.Name, n.Cluster.AdminKubeconfig(), localpath.Namespace, localpath.Name)...)
		}
		for _, n := range dc.Nodes() {
			nodePart := Part{DataCenter: dc.Name, Name: "node " + n.Name}
			if cs, err := clientset(n.Cluster.AdminKubeconfig()); err != nil {
				nodePart.Detail = err.Error()
			} else if ready, why := nodeReady(ctx, cs, n.Name); ready {
				nodePart.Healthy, nodePart.Detail = true, "Ready"
			} else {
				nodePart.Detail = why
			}
			parts = append(parts, nodePart)
		}
	}
	return parts
}

// processPart says whether the process of s runs, and where its log is when
// it does not.
func processPart(dataCenter, name string, s proc.Spec) Part {
	pid, ok := proc.Running(s)
	if !ok {
		return Part{DataCenter: dataCenter, Name: name, Detail: "not running; log: " + s.LogFile()}
	}
	return Part{DataCenter: dataCenter, Name: name, Healthy: true, Detail: fmt.Sprintf("pid %d", pid)}
}
