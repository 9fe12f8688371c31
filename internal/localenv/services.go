package localenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marina-platform/marina/internal/localenv/certmanager"
	"github.com/marina-platform/marina/internal/localenv/coredns"
	"github.com/marina-platform/marina/internal/localenv/localpath"
	"github.com/marina-platform/marina/internal/localenv/node"
	"github.com/marina-platform/marina/internal/localenv/pki"
	"github.com/marina-platform/marina/internal/localenv/vault"
)

// managedByLabel marks what the environment itself creates in a cluster.
const managedByLabel = "app.kubernetes.io/managed-by"

// VaultPort is where the Vault dev server listens in the shared namespace.
const VaultPort = 8200

// VaultRootToken is the dev server's root token. The server keeps its data
// in memory and only listens inside the environment's own network, so a
// well-known token costs nothing and saves every script from reading logs.
const VaultRootToken = "marina-dev-root"

// Vault is the shared Vault dev server with the transit engine, the KMS
// backend of the control planes' encryption at rest.
func (e *Env) Vault() vault.Server {
	return vault.Server{
		Vault: e.bin("vault"), Dir: filepath.Join(e.opts.Dir, "shared", "vault"),
		// On disk, so that stopping Vault for a while (an outage test, or
		// a person trying one) does not lose the key every control plane's
		// data is encrypted with.
		DataDir:   filepath.Join(e.opts.Dir, "shared", "vault", "data"),
		Address:   net.JoinHostPort(SharedHost.IP.String(), strconv.Itoa(VaultPort)),
		RootToken: VaultRootToken, NetNS: SharedHost.Name,
	}
}

// CertManager is the data center's cert-manager controller: its real
// controllers, run as a process next to the management cluster's own.
func (e *Env) CertManager(dc DataCenter) certmanager.Controller {
	return certmanager.Controller{
		Name: "cert-manager", Binary: e.bin("cert-manager-controller"),
		Kubeconfig: dc.Kubeconfig(), NetNS: dc.Cluster.NetNS, Dir: dc.Cluster.Dir,
	}
}

// ClusterIssuerName is the cert-manager ClusterIssuer every management
// cluster gets: a CA shared by the environment's data centers, so that
// certificates from any of them verify against one root.
const ClusterIssuerName = "marina-ca"

func (e *Env) caDir() string { return filepath.Join(e.opts.Dir, "shared", "pki") }

// CA is the environment's certificate authority behind ClusterIssuerName.
func (e *Env) CA() (*pki.CA, error) { return pki.LoadOrCreateCA(e.caDir(), "Marina local CA") }

// ensureClusterIssuer puts the CA in cert-manager's cluster resource
// namespace and makes the ClusterIssuer that signs with it.
func (e *Env) ensureClusterIssuer(ctx context.Context, c client.Client) error {
	ca, err := e.CA()
	if err != nil {
		return err
	}
	kp, err := ca.KeyPair()
	if err != nil {
		return err
	}
	ns := certmanager.DefaultClusterResourceNamespace
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: ClusterIssuerName, Namespace: ns, Labels: map[string]string{managedByLabel: "marina-dev"}},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: kp.CertPEM, corev1.TLSPrivateKeyKey: kp.KeyPEM, "ca.crt": kp.CertPEM},
	}
	if err := c.Create(ctx, secret); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	issuer := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
		"metadata": map[string]any{"name": ClusterIssuerName, "labels": map[string]any{managedByLabel: "marina-dev"}},
		"spec":     map[string]any{"ca": map[string]any{"secretName": ClusterIssuerName}},
	}}
	if err := c.Create(ctx, issuer); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return waitIssuerReady(ctx, c, ClusterIssuerName)
}

func waitIssuerReady(ctx context.Context, c client.Client, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		issuer := &unstructured.Unstructured{}
		issuer.SetAPIVersion("cert-manager.io/v1")
		issuer.SetKind("ClusterIssuer")
		err := c.Get(ctx, client.ObjectKey{Name: name}, issuer)
		if err == nil && conditionTrue(issuer, "Ready") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ClusterIssuer %s not Ready (cert-manager's log tells why)", name)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// conditionTrue reads status.conditions of an unstructured object.
func conditionTrue(u *unstructured.Unstructured, condType string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == condType {
			return m["status"] == "True"
		}
	}
	return false
}

// startCertManager installs cert-manager's CRDs into the data center's
// management cluster and starts its controllers.
func (e *Env) startCertManager(ctx context.Context, dc DataCenter, crds []string) error {
	var errs []error
	for _, f := range crds {
		errs = append(errs, kubectlApply(ctx, e.bin("kubectl"), dc.Kubeconfig(), f))
	}
	for _, f := range crds {
		errs = append(errs, kubectlWaitEstablished(ctx, e.bin("kubectl"), dc.Kubeconfig(), f))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if _, err := e.CertManager(dc).Start(); err != nil {
		return err
	}
	c, err := controllerClient(dc.Kubeconfig())
	if err != nil {
		return err
	}
	return e.ensureClusterIssuer(ctx, c)
}

// deployCoreDNS runs CoreDNS, serving cluster.local only, in a cluster
// that has a node.
func deployCoreDNS(ctx context.Context, kubeconfig string, v Versions) error {
	c, err := controllerClient(kubeconfig)
	if err != nil {
		return err
	}
	values := coredns.Values{Image: v.coreDNSImage(), ClusterIP: clusterDNS}
	if err := coredns.Apply(ctx, c, values); err != nil {
		return err
	}
	return coredns.WaitReady(ctx, c, 2*time.Minute)
}

// deployStorage runs the storage provisioner behind the default
// StorageClass of the node's cluster; its volumes are folders under the
// node's own folder, which `down` removes with the rest.
func deployStorage(ctx context.Context, n node.Node, v Versions) error {
	c, err := controllerClient(n.Cluster.AdminKubeconfig())
	if err != nil {
		return err
	}
	values := localpath.Values{
		Image: v.localPathImage(), HelperImage: VolumeHelperImage,
		NodePaths: map[string]string{n.Name: StorageDir(n)},
	}
	if err := localpath.Apply(ctx, c, values); err != nil {
		return err
	}
	return waitDeployments(ctx, n.Cluster.AdminKubeconfig(), localpath.Namespace, 2*time.Minute, localpath.Name)
}

// StorageDir is the folder under which a node's volumes live.
func StorageDir(n node.Node) string { return filepath.Join(n.Dir, "local-path") }

// startShared starts the services every data center uses: the external
// etcd cluster, Vault with transit, and the CRD-bundle server.
func (e *Env) startShared(ctx context.Context, p *progress) error {
	if err := p.step("shared: external etcd, 3 members with mutual TLS", func() error {
		if err := e.topo.EnsureHost(SharedHost); err != nil {
			return err
		}
		return e.ExternalEtcd().Start(ctx)
	}); err != nil {
		return err
	}
	if err := p.step("shared: Vault dev server with transit at "+e.Vault().URL(), func() error {
		if err := os.MkdirAll(e.Vault().Dir, 0o755); err != nil {
			return err
		}
		return e.Vault().Start(ctx)
	}); err != nil {
		return err
	}
	return p.step("shared: CRD bundle server at "+BundleURL(""), func() error { return e.startBundleServer(ctx) })
}
