// Package cluster runs a Kubernetes control plane as processes inside a
// network namespace: etcd, kube-apiserver and, for clusters that run
// workloads, kube-controller-manager and kube-scheduler. It writes the
// cluster's PKI and the kubeconfigs of its administrator, controllers and
// nodes under the cluster's folder.
package cluster

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/keyutil"

	"github.com/marina-platform/marina/internal/localenv/pki"
	"github.com/marina-platform/marina/internal/localenv/proc"
)

// Binaries are the paths of the programs a cluster runs.
type Binaries struct {
	Etcd                  string
	KubeAPIServer         string
	KubeControllerManager string
	KubeScheduler         string
}

// BinariesIn names the binaries in kubeDir, where `make test-binaries`
// links them, with etcd at its own path.
func BinariesIn(kubeDir, etcd string) Binaries {
	return Binaries{
		Etcd:                  etcd,
		KubeAPIServer:         filepath.Join(kubeDir, "kube-apiserver"),
		KubeControllerManager: filepath.Join(kubeDir, "kube-controller-manager"),
		KubeScheduler:         filepath.Join(kubeDir, "kube-scheduler"),
	}
}

// Cluster is one Kubernetes control plane.
type Cluster struct {
	// Name of the cluster, such as dc1 or dc1-member-1; it names processes
	// and certificates.
	Name string
	// NetNS the processes run in.
	NetNS string
	// IP the API server binds to and advertises; reachable from the host and
	// every namespace of the environment.
	IP net.IP
	// APIPort of the API server; EtcdPort and EtcdPort+1 (peer) are used by
	// etcd on the namespace's loopback. Clusters sharing a namespace need
	// distinct ports.
	APIPort  int
	EtcdPort int
	// ServiceCIDR of the cluster's Services.
	ServiceCIDR string
	// Controllers adds kube-controller-manager and kube-scheduler, which a
	// cluster needs to run Deployments on its nodes.
	Controllers bool
	// Dir holds the cluster's PKI, data, logs, pid files and kubeconfigs.
	Dir string
	Bin Binaries
}

// AdminKubeconfig is the path of the administrator's kubeconfig.
func (c Cluster) AdminKubeconfig() string { return filepath.Join(c.Dir, "admin.kubeconfig") }

// Server is the API server's URL.
func (c Cluster) Server() string {
	return "https://" + net.JoinHostPort(c.IP.String(), strconv.Itoa(c.APIPort))
}

func (c Cluster) pkiDir() string { return filepath.Join(c.Dir, "pki") }

// CAPEM is the cluster's CA certificate, which its API server's serving
// certificate chains to, for clients' kubeconfigs.
func (c Cluster) CAPEM() ([]byte, error) { return os.ReadFile(filepath.Join(c.pkiDir(), "ca.crt")) }

// CA is the cluster's CA, for issuing node and user certificates.
func (c Cluster) CA() (*pki.CA, error) {
	return pki.LoadOrCreateCA(c.pkiDir(), c.Name+"-ca")
}

// Processes lists the cluster's processes in start order.
func (c Cluster) Processes() []proc.Spec {
	p := c.pkiDir()
	etcdPeer := c.EtcdPort + 1
	specs := []proc.Spec{{
		Name: "etcd", Path: c.Bin.Etcd, NetNS: c.NetNS, Dir: c.Dir,
		Args: []string{
			"--name=" + c.Name,
			"--data-dir=" + filepath.Join(c.Dir, "etcd-data"),
			fmt.Sprintf("--listen-client-urls=http://127.0.0.1:%d", c.EtcdPort),
			fmt.Sprintf("--advertise-client-urls=http://127.0.0.1:%d", c.EtcdPort),
			fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", etcdPeer),
			fmt.Sprintf("--initial-advertise-peer-urls=http://127.0.0.1:%d", etcdPeer),
			fmt.Sprintf("--initial-cluster=%s=http://127.0.0.1:%d", c.Name, etcdPeer),
			// A local environment trades crash safety for a disk that is
			// not hammered by a dozen etcd members.
			"--unsafe-no-fsync",
			"--log-level=warn",
		},
	}, {
		Name: "kube-apiserver", Path: c.Bin.KubeAPIServer, NetNS: c.NetNS, Dir: c.Dir,
		Args: []string{
			"--advertise-address=" + c.IP.String(),
			"--bind-address=" + c.IP.String(),
			"--secure-port=" + strconv.Itoa(c.APIPort),
			fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", c.EtcdPort),
			"--client-ca-file=" + filepath.Join(p, "ca.crt"),
			"--tls-cert-file=" + filepath.Join(p, "apiserver.crt"),
			"--tls-private-key-file=" + filepath.Join(p, "apiserver.key"),
			// Reach kubelets (logs, exec) at their node IP: a node's host
			// name would be looked up in the machine's resolver, outside
			// the environment's network.
			"--kubelet-preferred-address-types=InternalIP",
			"--kubelet-client-certificate=" + filepath.Join(p, "apiserver-kubelet-client.crt"),
			"--kubelet-client-key=" + filepath.Join(p, "apiserver-kubelet-client.key"),
			"--service-account-issuer=https://kubernetes.default.svc",
			"--service-account-key-file=" + filepath.Join(p, "sa.pub"),
			"--service-account-signing-key-file=" + filepath.Join(p, "sa.key"),
			"--service-cluster-ip-range=" + c.ServiceCIDR,
			"--authorization-mode=Node,RBAC",
			"--allow-privileged=true",
			// Aggregated API servers (the federation engine's among them)
			// authenticate the API server by this front proxy identity.
			"--requestheader-client-ca-file=" + filepath.Join(p, "front-proxy-ca.crt"),
			"--requestheader-allowed-names=front-proxy-client",
			"--requestheader-username-headers=X-Remote-User",
			"--requestheader-group-headers=X-Remote-Group",
			"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			"--proxy-client-cert-file=" + filepath.Join(p, "front-proxy-client.crt"),
			"--proxy-client-key-file=" + filepath.Join(p, "front-proxy-client.key"),
			"--enable-aggregator-routing=true",
			"--profiling=false",
		},
	}}
	if !c.Controllers {
		return specs
	}
	return append(specs, proc.Spec{
		Name: "kube-controller-manager", Path: c.Bin.KubeControllerManager, NetNS: c.NetNS, Dir: c.Dir,
		Args: []string{
			"--kubeconfig=" + filepath.Join(c.Dir, "controller-manager.kubeconfig"),
			"--authentication-kubeconfig=" + filepath.Join(c.Dir, "controller-manager.kubeconfig"),
			"--authorization-kubeconfig=" + filepath.Join(c.Dir, "controller-manager.kubeconfig"),
			"--cluster-signing-cert-file=" + filepath.Join(p, "ca.crt"),
			"--cluster-signing-key-file=" + filepath.Join(p, "ca.key"),
			"--root-ca-file=" + filepath.Join(p, "ca.crt"),
			"--service-account-private-key-file=" + filepath.Join(p, "sa.key"),
			"--use-service-account-credentials=true",
			"--service-cluster-ip-range=" + c.ServiceCIDR,
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--secure-port=0",
			"--profiling=false",
		},
	}, proc.Spec{
		Name: "kube-scheduler", Path: c.Bin.KubeScheduler, NetNS: c.NetNS, Dir: c.Dir,
		Args: []string{
			"--kubeconfig=" + filepath.Join(c.Dir, "scheduler.kubeconfig"),
			"--authentication-kubeconfig=" + filepath.Join(c.Dir, "scheduler.kubeconfig"),
			"--authorization-kubeconfig=" + filepath.Join(c.Dir, "scheduler.kubeconfig"),
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--secure-port=0",
			"--profiling=false",
		},
	})
}

// WriteConfig creates the PKI and kubeconfigs the processes need. Existing
// files are kept, so that kubeconfigs handed out earlier stay valid.
func (c Cluster) WriteConfig() error {
	ca, err := c.CA()
	if err != nil {
		return fmt.Errorf("cluster %s: CA: %w", c.Name, err)
	}
	p := c.pkiDir()
	kubernetesSvc, err := firstIP(c.ServiceCIDR)
	if err != nil {
		return err
	}
	leaves := []struct {
		file string
		req  pki.Request
	}{
		{"apiserver", pki.Request{
			CommonName: "kube-apiserver", Server: true,
			DNSNames: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
			IPs:      []net.IP{c.IP, kubernetesSvc, net.IPv4(127, 0, 0, 1)},
		}},
		{"apiserver-kubelet-client", pki.Request{CommonName: "kube-apiserver-kubelet-client", Organizations: []string{"kubeadm:cluster-admins"}, Client: true}},
		{"admin", pki.Request{CommonName: "marina-admin", Organizations: []string{"system:masters"}, Client: true}},
		{"controller-manager", pki.Request{CommonName: "system:kube-controller-manager", Client: true}},
		{"scheduler", pki.Request{CommonName: "system:kube-scheduler", Client: true}},
	}
	for _, l := range leaves {
		if exists(filepath.Join(p, l.file+".crt")) {
			continue
		}
		kp, err := ca.Issue(l.req)
		if err != nil {
			return err
		}
		if err := kp.Write(p, l.file); err != nil {
			return err
		}
	}

	frontCA, err := pki.LoadOrCreateCA(filepath.Join(p, "front-proxy"), c.Name+"-front-proxy-ca")
	if err != nil {
		return err
	}
	if !exists(filepath.Join(p, "front-proxy-ca.crt")) {
		if err := os.WriteFile(filepath.Join(p, "front-proxy-ca.crt"), frontCA.CertPEM(), 0o644); err != nil {
			return err
		}
	}
	if !exists(filepath.Join(p, "front-proxy-client.crt")) {
		kp, err := frontCA.Issue(pki.Request{CommonName: "front-proxy-client", Client: true})
		if err != nil {
			return err
		}
		if err := kp.Write(p, "front-proxy-client"); err != nil {
			return err
		}
	}

	if !exists(filepath.Join(p, "sa.key")) {
		key, err := keyutil.MakeEllipticPrivateKeyPEM()
		if err != nil {
			return err
		}
		parsed, err := keyutil.ParsePrivateKeyPEM(key)
		if err != nil {
			return err
		}
		signer, ok := parsed.(crypto.Signer)
		if !ok {
			return errors.New("service account key cannot sign")
		}
		der, err := x509.MarshalPKIXPublicKey(signer.Public())
		if err != nil {
			return err
		}
		pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		if err := os.WriteFile(filepath.Join(p, "sa.pub"), pubPEM, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(p, "sa.key"), key, 0o600); err != nil {
			return err
		}
	}

	for _, kc := range []struct{ file, cert string }{
		{"admin.kubeconfig", "admin"},
		{"controller-manager.kubeconfig", "controller-manager"},
		{"scheduler.kubeconfig", "scheduler"},
	} {
		if err := c.WriteKubeconfig(filepath.Join(c.Dir, kc.file), filepath.Join(p, kc.cert)); err != nil {
			return err
		}
	}
	return nil
}

// WriteKubeconfig writes a kubeconfig for the client certificate at
// certBase.crt/.key, embedding everything so the file can be copied.
func (c Cluster) WriteKubeconfig(path, certBase string) error {
	caPEM, err := c.CAPEM()
	if err != nil {
		return err
	}
	cert, err := os.ReadFile(certBase + ".crt")
	if err != nil {
		return err
	}
	key, err := os.ReadFile(certBase + ".key")
	if err != nil {
		return err
	}
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{c.Name: {Server: c.Server(), CertificateAuthorityData: caPEM}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{c.Name: {ClientCertificateData: cert, ClientKeyData: key}},
		Contexts:       map[string]*clientcmdapi.Context{c.Name: {Cluster: c.Name, AuthInfo: c.Name}},
		CurrentContext: c.Name,
	}
	return clientcmd.WriteToFile(cfg, path)
}

// Start writes the configuration, starts every process that does not run
// yet and waits for the API server. The controllers start only once it is
// ready: kube-controller-manager gives up when the API server is not healthy
// within seconds of its own start, which happens on a loaded machine.
func (c Cluster) Start(ctx context.Context) error {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	if err := c.WriteConfig(); err != nil {
		return err
	}
	specs := c.Processes()
	for i, s := range specs {
		if i == 2 {
			if err := c.WaitReady(ctx); err != nil {
				return err
			}
		}
		if _, err := proc.Start(s); err != nil {
			return fmt.Errorf("cluster %s: %w", c.Name, err)
		}
	}
	if err := c.WaitReady(ctx); err != nil {
		return err
	}
	return c.allowKubeletAPI(ctx)
}

// NetworkPolicyUser is the identity of the nodes' NetworkPolicy enforcer.
const NetworkPolicyUser = "marina:network-policy"

// networkPolicyRole is what the enforcer reads: the policies, the pods and
// namespaces their selectors match, and the nodes, Services and endpoints
// kube-router watches to tell pod traffic from Service and node traffic.
// It writes nothing.
func networkPolicyRole() (*rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding) {
	read := []string{"get", "list", "watch"}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: NetworkPolicyUser},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods", "namespaces", "nodes", "services", "endpoints"}, Verbs: read},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: read},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: read},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: NetworkPolicyUser},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: NetworkPolicyUser}},
	}
	return role, binding
}

// kubeletClientUser is the identity the API server presents to kubelets.
const kubeletClientUser = "kube-apiserver-kubelet-client"

// allowKubeletAPI lets the API server use the kubelets' API (logs, exec,
// port-forward): kubelets authorize it through the API server, like any
// other client, and kubeadm grants the same binding. It also lets the
// nodes' NetworkPolicy enforcer read what it enforces.
func (c Cluster) allowKubeletAPI(ctx context.Context) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig())
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "marina:" + kubeletClientUser},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:kubelet-api-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: kubeletClientUser}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	role, npBinding := networkPolicyRole()
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, npBinding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	return nil
}

// Stop stops the processes in reverse order; data stays for the next Start.
func (c Cluster) Stop() error {
	specs := c.Processes()
	var errs []error
	for i := len(specs) - 1; i >= 0; i-- {
		errs = append(errs, proc.Stop(specs[i], 20*time.Second))
	}
	return errors.Join(errs...)
}

// WaitReady polls the API server's /readyz until it answers ok or ctx ends.
func (c Cluster) WaitReady(ctx context.Context) error {
	client, err := c.adminHTTPClient()
	if err != nil {
		return err
	}
	var last error
	for {
		last = c.ready(ctx, client)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster %s: API server %s not ready: %w (log: %s)", c.Name, c.Server(), last, filepath.Join(c.Dir, "kube-apiserver.log"))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Healthy asks the API server's /readyz once.
func (c Cluster) Healthy(ctx context.Context) error {
	client, err := c.adminHTTPClient()
	if err != nil {
		return err
	}
	return c.ready(ctx, client)
}

func (c Cluster) ready(ctx context.Context, client *http.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Server()+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz answered %s", resp.Status)
	}
	return nil
}

func (c Cluster) adminHTTPClient() (*http.Client, error) {
	p := c.pkiDir()
	pair, err := tls.LoadX509KeyPair(filepath.Join(p, "admin.crt"), filepath.Join(p, "admin.key"))
	if err != nil {
		return nil, err
	}
	caPEM, err := c.CAPEM()
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12,
	}}}, nil
}

func firstIP(cidr string) (net.IP, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("service CIDR %q: %w", cidr, err)
	}
	ip := n.IP.To4()
	if ip == nil {
		return nil, fmt.Errorf("service CIDR %q is not IPv4", cidr)
	}
	first := make(net.IP, 4)
	copy(first, ip)
	first[3]++
	return first, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
