package controller_test

// Integration tests of the reconciler against a real API server (envtest),
// real cert-manager controllers, a real kube-controller-manager running the
// garbage collector, and a real external etcd cluster with mutual TLS, all
// built from source by `make test-binaries`. No kubelet runs here, so pods
// never start: these tests cover every stage up to the API server's
// rollout, and deletion. The e2e suite covers running control planes.

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/localenv/certmanager"
	"github.com/marina-platform/marina/internal/localenv/etcdcluster"
	"github.com/marina-platform/marina/internal/localenv/pki"
	"github.com/marina-platform/marina/internal/localenv/vault"
	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/internal/urlpolicy"
	"github.com/marina-platform/marina/operators/controlplane/controller"
	"github.com/marina-platform/marina/operators/controlplane/crdbundle"
	"github.com/marina-platform/marina/operators/controlplane/externaletcd"
	"github.com/marina-platform/marina/operators/controlplane/render"
)

var (
	k8s client.Client
	// etcd is the external etcd cluster the ControlPlanes share.
	etcd etcdcluster.Cluster
	// etcdTLS is the data of a ControlPlane's etcd TLS Secret.
	etcdTLS   map[string][]byte
	vaultSrv  vault.Server
	apiServer *rest.Config
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "marina-controlplane-test-")
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
	root, err := testenv.RepoRoot()
	if err != nil {
		return 1, err
	}
	files, err := certmanager.CRDs(ctx, root)
	if err != nil {
		return 1, err
	}
	if err := env.InstallCRDs(files); err != nil {
		return 1, err
	}
	assets := os.Getenv(testenv.AssetsEnv)

	kubeconfig, err := env.KubeconfigFile(dir)
	if err != nil {
		return 1, err
	}
	cm := certmanager.Controller{Binary: filepath.Join(assets, certmanager.BinaryName), Kubeconfig: kubeconfig, Dir: dir}
	if _, err := cm.Start(); err != nil {
		return 1, err
	}
	defer func() { _ = cm.Stop() }()
	stopKCM, err := env.StartControllerManager(dir, "garbagecollector")
	if err != nil {
		return 1, err
	}
	defer func() { _ = stopKCM() }()

	// An address of its own in 127.0.0.0/8: a free port picked on
	// 127.0.0.1 says nothing of the peer port next to it, which another
	// test's connection may hold by the time etcd binds it.
	etcd = etcdcluster.Cluster{
		Name: "external", IP: net.IPv4(127, 81, byte(rand.IntN(250)+1), byte(rand.IntN(250)+1)), Members: 1, BasePort: 2379,
		Dir: filepath.Join(dir, "etcd"), Etcd: filepath.Join(assets, "etcd"), Auth: true,
	}
	startCtx, cancelStart := context.WithTimeout(ctx, 2*time.Minute) // as envtest gets: a loaded machine is slow to start etcd
	defer cancelStart()
	if err := etcd.Start(startCtx); err != nil {
		return 1, fmt.Errorf("start external etcd: %w", err)
	}
	defer func() { _ = etcd.Stop() }()
	etcdTLS = map[string][]byte{}
	caFile, certFile, keyFile := etcd.ClientFiles()
	for key, file := range map[string]string{"ca.crt": caFile, "tls.crt": certFile, "tls.key": keyFile} {
		if etcdTLS[key], err = os.ReadFile(file); err != nil {
			return 1, err
		}
	}

	// A real Vault with transit, its storage on disk so that the outage
	// test can stop and start it without losing the key.
	vaultPort, err := freePort()
	if err != nil {
		return 1, err
	}
	vaultSrv = vault.Server{
		Vault: filepath.Join(assets, "vault"), Dir: filepath.Join(dir, "vault"), DataDir: filepath.Join(dir, "vault", "data"),
		Address: fmt.Sprintf("127.0.0.1:%d", vaultPort), RootToken: "test-root",
	}
	if err := vaultSrv.Start(startCtx); err != nil {
		return 1, fmt.Errorf("start vault: %w", err)
	}
	defer func() { _ = vaultSrv.Stop() }()
	apiServer = env.Config

	opts := ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	}
	// The production cache (only what the operator labels as its own) and client.
	controller.ManagerOptions(&opts)
	mgr, err := ctrl.NewManager(env.Config, opts)
	if err != nil {
		return 1, err
	}
	chart, err := render.Load()
	if err != nil {
		return 1, err
	}
	r := &controller.Reconciler{
		Client:     mgr.GetClient(),
		APIReader:  mgr.GetAPIReader(),
		Recorder:   mgr.GetEventRecorder("marina-controlplane"),
		Chart:      chart,
		CRDs:       crdbundle.NewFetcher(),
		DataCenter: "dc1",
		RetryAfter: 500 * time.Millisecond,

		KMSPluginImage:    kmsPluginImage,
		VaultPollInterval: time.Second,
		// As a platform team would limit it: the test's own servers and
		// the engine's releases; the test's Vault is plain http.
		URLPolicy: urlpolicy.Policy{
			Allowed:   urlpolicy.Hosts{"127.0.0.1", "localhost", "github.com"},
			PlainHTTP: urlpolicy.Hosts{"127.0.0.1"},
		},
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return 1, err
	}
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(ctx) }()
	defer func() { cancel(); <-mgrDone }()

	code := m.Run()
	if code != 0 {
		for _, log := range []string{cm.LogFile(), filepath.Join(dir, "kube-controller-manager.log")} {
			if data, err := os.ReadFile(log); err == nil {
				fmt.Fprintf(os.Stderr, "--- last lines of %s:\n%s\n", log, tail(string(data), 30))
			}
		}
	}
	return code, nil
}

// TestCustomCAAndExternalEtcd provisions a control plane as far as a
// cluster without nodes allows, then deletes it: cert-manager issues every
// certificate from the user's CA, external etcd answers, and the API server
// is deployed with the priority class. Deletion leaves the user's Secrets
// and other control planes' keys alone and removes everything else,
// including the control plane's keys in etcd (deletionPolicy Delete).
func TestCustomCAAndExternalEtcd(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	ca := createCA(t, ns, "my-ca")
	createSecret(t, ns, "etcd-client", etcdTLS)
	createPriorityClass(t, "cp-critical-"+ns)

	cp := externalEtcdControlPlane(ns, "alpha")
	cp.Spec.Certificates.CASecretRef.Name = "my-ca"
	cp.Spec.PriorityClassName = "cp-critical-" + ns
	cp.Spec.DeletionPolicy = marinav1alpha1.DeletionPolicyDelete
	create(t, cp)

	waitCondition(t, cp, marinav1alpha1.ConditionCertificatesReady, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded)
	waitCondition(t, cp, marinav1alpha1.ConditionEtcdReady, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded)
	waitCondition(t, cp, marinav1alpha1.ConditionEncryptionReady, metav1.ConditionTrue, marinav1alpha1.ReasonDisabled)
	// No kubelet runs here: the API server's pods never start.
	got := waitCondition(t, cp, marinav1alpha1.ConditionAPIServerReady, metav1.ConditionFalse, marinav1alpha1.ReasonRolloutInProgress)
	if got.Status.Endpoint != "https://alpha-apiserver."+ns+".svc:5443" {
		t.Errorf("status.endpoint = %q", got.Status.Endpoint)
	}
	if ready := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionReady); ready == nil || ready.Status != metav1.ConditionFalse {
		t.Errorf("Ready = %+v, want False while the API server rolls out", ready)
	}
	if !slices.Contains(got.Finalizers, controller.Finalizer) {
		t.Errorf("finalizers = %v, want %s", got.Finalizers, controller.Finalizer)
	}

	// The user's CA signs the seven certificates clients and servers of the
	// federation API server meet; the control plane's own CAs sign the
	// front proxy's identity (and the CSRs of pull-mode agents). The
	// serving certificate names the Service in all its forms.
	certs := list(t, ns, "cert-manager.io/v1", "CertificateList")
	if len(certs) != 10 {
		t.Errorf("%d Certificates, want 10 (apiserver, front proxy, service account, admin, operator, registration, sync, kube-controller-manager; front-proxy and signer CAs)", len(certs))
	}
	tlsSecret := func(c unstructured.Unstructured) *corev1.Secret {
		t.Helper()
		secretName, _, _ := unstructured.NestedString(c.Object, "spec", "secretName")
		sec := &corev1.Secret{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: secretName}, sec); err != nil {
			t.Fatal(err)
		}
		return sec
	}
	own := map[string]*x509.Certificate{}
	for _, c := range certs {
		if name := c.GetName(); name == "alpha-front-proxy-ca" || name == "alpha-signer-ca" {
			root := parseCert(t, tlsSecret(c).Data["tls.crt"])
			if !root.IsCA {
				t.Errorf("%s is not a CA certificate", name)
			}
			verifyChain(t, tlsSecret(c).Data["tls.crt"], root, name)
			own[name] = root
		}
	}
	for _, c := range certs {
		sec := tlsSecret(c)
		switch c.GetName() {
		case "alpha-front-proxy-ca", "alpha-signer-ca":
		case "alpha-front-proxy-client":
			verifyChain(t, sec.Data["tls.crt"], own["alpha-front-proxy-ca"], "the front proxy's CA")
			if chains(sec.Data["tls.crt"], ca.Cert) {
				t.Error("the front proxy's client certificate verifies against the user's CA: any certificate of the user's issuer could pose as the front proxy")
			}
		default:
			leaf := verifyChain(t, sec.Data["tls.crt"], ca.Cert, "the user's CA")
			if c.GetName() == "alpha-apiserver" {
				for _, name := range []string{"alpha-apiserver", "alpha-apiserver." + ns, "alpha-apiserver." + ns + ".svc", "alpha-apiserver." + ns + ".svc.cluster.local"} {
					if !slices.Contains(leaf.DNSNames, name) {
						t.Errorf("serving certificate lacks DNS name %s: %v", name, leaf.DNSNames)
					}
				}
			}
		}
		assertOwned(t, &c, cp)
	}
	// The API server trusts client certificates of the user's CA and of
	// the CSR signer, nothing else.
	bundle := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "alpha-client-ca"}, bundle); err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for rest := bundle.Data["ca.crt"]; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, c.Subject.CommonName)
	}
	if want := []string{ca.Cert.Subject.CommonName, "alpha-signer-ca"}; !slices.Equal(subjects, want) {
		t.Errorf("client CA bundle holds %v, want %v", subjects, want)
	}

	d := &appsv1.Deployment{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "alpha-apiserver"}, d); err != nil {
		t.Fatal(err)
	}
	if d.Spec.Template.Spec.PriorityClassName != "cp-critical-"+ns {
		t.Errorf("API server pods' priority class = %q", d.Spec.Template.Spec.PriorityClassName)
	}
	if d.Spec.Template.Annotations["checksum.marina.dev/certificates"] == "" {
		t.Error("the API server's pods carry no certificates checksum: renewals would not roll them")
	}
	if !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--etcd-prefix=/marina/dc1/"+ns+"/alpha") {
		t.Errorf("API server args lack the key prefix: %v", d.Spec.Template.Spec.Containers[0].Args)
	}
	assertOwned(t, d, cp)
	for _, name := range []string{"alpha-kube-controller-manager-kubeconfig"} {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{}); err != nil {
			t.Errorf("Secret %s: %v", name, err)
		}
	}

	// Keys of this control plane, of a neighbour whose prefix starts the
	// same, and of another control plane.
	cluster := externaletcd.Cluster{Endpoints: etcd.Endpoints(), CA: etcdTLS["ca.crt"], Cert: etcdTLS["tls.crt"], Key: etcdTLS["tls.key"]}
	cli, err := etcd.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	prefix := "/marina/dc1/" + ns + "/alpha"
	for _, k := range []string{prefix + "/registry/a", prefix + "/registry/b", prefix + "x/registry/c", "/marina/dc1/" + ns + "/beta/registry/d"} {
		if _, err := cli.Put(ctx, k, "v"); err != nil {
			t.Fatal(err)
		}
	}

	if err := k8s.Delete(ctx, cp); err != nil {
		t.Fatal(err)
	}
	waitGone(t, cp, 90*time.Second)

	for _, kind := range []string{"DeploymentList", "ServiceList", "SecretList"} {
		apiVersion := "v1"
		if kind == "DeploymentList" {
			apiVersion = "apps/v1"
		}
		for _, o := range list(t, ns, apiVersion, kind) {
			if o.GetLabels()["app.kubernetes.io/instance"] == "alpha" {
				t.Errorf("%s %s is left behind", strings.TrimSuffix(kind, "List"), o.GetName())
			}
		}
	}
	for _, kind := range []string{"CertificateList", "IssuerList"} {
		if left := list(t, ns, "cert-manager.io/v1", kind); len(left) > 0 {
			t.Errorf("%d %s left behind, such as %s", len(left), kind, left[0].GetName())
		}
	}
	for _, name := range []string{"my-ca", "etcd-client"} {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{}); err != nil {
			t.Errorf("the user's Secret %s: %v", name, err)
		}
	}
	if n, err := cluster.Count(ctx, prefix); err != nil || n != 0 {
		t.Errorf("%d keys left under %s (%v), want 0", n, prefix, err)
	}
	for _, p := range []string{prefix + "x", "/marina/dc1/" + ns + "/beta"} {
		if n, err := cluster.Count(ctx, p); err != nil || n != 1 {
			t.Errorf("%d keys under %s (%v), want the 1 that is not this control plane's", n, p, err)
		}
	}
}

// TestBadInputIsReportedAndRecovers breaks one input at a time. Each shows
// as a False condition with a reason and a message naming what to fix,
// plus a Warning Event, and the control plane goes on by itself once the
// input is fixed.
func TestBadInputIsReportedAndRecovers(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	createSecret(t, ns, "etcd-client", etcdTLS)

	t.Run("missing CA Secret", func(t *testing.T) {
		cp := create(t, externalEtcdControlPlane(ns, "no-ca"))
		got := waitCondition(t, cp, marinav1alpha1.ConditionCertificatesReady, metav1.ConditionFalse, marinav1alpha1.ReasonSecretNotFound)
		assertMessage(t, got, marinav1alpha1.ConditionCertificatesReady, "Secret "+ns+"/no-ca-ca named in spec.certificates.caSecretRef does not exist")
		waitEvent(t, cp, corev1.EventTypeWarning, marinav1alpha1.ReasonSecretNotFound)
		createCA(t, ns, "no-ca-ca")
		waitCondition(t, cp, marinav1alpha1.ConditionCertificatesReady, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded)
	})

	t.Run("CA Secret that is not a CA", func(t *testing.T) {
		ca, err := pki.NewCA("not-a-ca")
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := ca.Issue(pki.Request{CommonName: "leaf", Client: true})
		if err != nil {
			t.Fatal(err)
		}
		createSecret(t, ns, "leaf-ca", map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM})
		cp := create(t, externalEtcdControlPlane(ns, "leaf"))
		got := waitCondition(t, cp, marinav1alpha1.ConditionCertificatesReady, metav1.ConditionFalse, marinav1alpha1.ReasonInvalidSecret)
		assertMessage(t, got, marinav1alpha1.ConditionCertificatesReady, "is not a CA certificate")
		waitEvent(t, cp, corev1.EventTypeWarning, marinav1alpha1.ReasonInvalidSecret)
		// The user puts a CA into the Secret: the next try (RetryAfter) takes it.
		kp, err := ca.KeyPair()
		if err != nil {
			t.Fatal(err)
		}
		sec := &corev1.Secret{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "leaf-ca"}, sec); err != nil {
			t.Fatal(err)
		}
		sec.Data = map[string][]byte{"tls.crt": kp.CertPEM, "tls.key": kp.KeyPEM}
		if err := k8s.Update(ctx, sec); err != nil {
			t.Fatal(err)
		}
		waitCondition(t, cp, marinav1alpha1.ConditionCertificatesReady, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded)
	})

	t.Run("missing ClusterIssuer", func(t *testing.T) {
		cp := externalEtcdControlPlane(ns, "no-issuer")
		cp.Spec.Certificates = marinav1alpha1.CertificatesSpec{IssuerRef: &marinav1alpha1.IssuerReference{Name: "corp-pki-" + ns, Kind: "ClusterIssuer"}}
		create(t, cp)
		got := waitCondition(t, cp, marinav1alpha1.ConditionCertificatesReady, metav1.ConditionFalse, marinav1alpha1.ReasonIssuerNotReady)
		assertMessage(t, got, marinav1alpha1.ConditionCertificatesReady, "ClusterIssuer corp-pki-"+ns+" named in spec.certificates.issuerRef does not exist")
		waitEvent(t, cp, corev1.EventTypeWarning, marinav1alpha1.ReasonIssuerNotReady)
		// The platform team creates it: a CA ClusterIssuer, whose CA
		// Secret lives in cert-manager's cluster resource namespace.
		createClusterIssuer(t, "corp-pki-"+ns)
		waitCondition(t, cp, marinav1alpha1.ConditionCertificatesReady, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded)
	})

	t.Run("unknown priority class", func(t *testing.T) {
		cp := externalEtcdControlPlane(ns, "no-pc")
		cp.Spec.Components.KubeControllerManager.PriorityClassName = "gold-" + ns
		createCA(t, ns, "no-pc-ca")
		create(t, cp)
		got := waitCondition(t, cp, marinav1alpha1.ConditionReady, metav1.ConditionFalse, marinav1alpha1.ReasonPriorityClassNotFound)
		assertMessage(t, got, marinav1alpha1.ConditionReady, `PriorityClass "gold-`+ns+`" named in spec.components.kubeControllerManager.priorityClassName does not exist`)
		waitEvent(t, cp, corev1.EventTypeWarning, marinav1alpha1.ReasonPriorityClassNotFound)
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "no-pc-apiserver"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
			t.Errorf("the API server was deployed before its priority class existed: %v", err)
		}
		createPriorityClass(t, "gold-"+ns)
		waitCondition(t, cp, marinav1alpha1.ConditionAPIServerReady, metav1.ConditionFalse, marinav1alpha1.ReasonRolloutInProgress)
	})

	t.Run("URL of a host the platform team does not allow", func(t *testing.T) {
		cp := externalEtcdControlPlane(ns, "bad-url")
		cp.Spec.CRDs.HTTP = &marinav1alpha1.HTTPSource{URL: "http://169.254.169.254/latest/meta-data/crds.tar.gz", SHA256: strings.Repeat("0", 64)}
		createCA(t, ns, "bad-url-ca")
		create(t, cp)
		got := waitCondition(t, cp, marinav1alpha1.ConditionReady, metav1.ConditionFalse, marinav1alpha1.ReasonURLNotAllowed)
		assertMessage(t, got, marinav1alpha1.ConditionReady, "spec.crds.http.url: host not allowed: 169.254.169.254 is not among the hosts the platform team allows")
		assertMessage(t, got, marinav1alpha1.ConditionReady, "operators.controlplane.allowedURLHosts")
		waitEvent(t, cp, corev1.EventTypeWarning, marinav1alpha1.ReasonURLNotAllowed)
		// Refused before anything is made.
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "bad-url-apiserver-tls"}, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "cert-manager.io/v1", "kind": "Certificate"}}); !apierrors.IsNotFound(err) {
			t.Errorf("a certificate was requested for a spec whose URL is refused: %v", err)
		}
		patch(t, cp, func(cp *marinav1alpha1.ControlPlane) { cp.Spec.CRDs.HTTP = nil })
		waitCondition(t, cp, marinav1alpha1.ConditionCertificatesReady, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded)
	})

	t.Run("Vault over plain http", func(t *testing.T) {
		cp := vaultControlPlane(ns, "plain-vault", marinav1alpha1.VaultAuth{Token: &marinav1alpha1.VaultTokenAuth{
			SecretRef: marinav1alpha1.SecretKeyReference{Name: "plain-vault-token"}}})
		createCA(t, ns, "plain-vault-ca")
		createSecret(t, ns, "plain-vault-token", map[string][]byte{"token": []byte(vaultSrv.RootToken)})
		good := cp.Spec.Encryption.KMS.Vault.Address
		cp.Spec.Encryption.KMS.Vault.Address = strings.Replace(good, "127.0.0.1", "localhost", 1)
		create(t, cp)
		got := waitCondition(t, cp, marinav1alpha1.ConditionReady, metav1.ConditionFalse, marinav1alpha1.ReasonInsecureURL)
		assertMessage(t, got, marinav1alpha1.ConditionReady, "spec.encryption.kms.vault.address: plain http: "+cp.Spec.Encryption.KMS.Vault.Address+" would carry credentials and keys unencrypted; use https")
		waitEvent(t, cp, corev1.EventTypeWarning, marinav1alpha1.ReasonInsecureURL)
		// The token was never sent: the check comes before any request to Vault.
		if c := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionEncryptionReady); c != nil && c.Reason != marinav1alpha1.ReasonWaitingForDependency {
			t.Errorf("EncryptionReady %s/%s: the encryption stage ran with a refused Vault address", c.Status, c.Reason)
		}
		patch(t, cp, func(cp *marinav1alpha1.ControlPlane) { cp.Spec.Encryption.KMS.Vault.Address = good })
		waitCondition(t, cp, marinav1alpha1.ConditionEncryptionReady, metav1.ConditionFalse, marinav1alpha1.ReasonKeyRotationInProgress)
	})

	t.Run("unreachable external etcd", func(t *testing.T) {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		cp := externalEtcdControlPlane(ns, "no-etcd")
		cp.Spec.Etcd.External.Endpoints = []string{fmt.Sprintf("https://127.0.0.1:%d", port)}
		createCA(t, ns, "no-etcd-ca")
		create(t, cp)
		got := waitCondition(t, cp, marinav1alpha1.ConditionEtcdReady, metav1.ConditionFalse, marinav1alpha1.ReasonEtcdUnreachable)
		assertMessage(t, got, marinav1alpha1.ConditionEtcdReady, "does not answer")
		waitEvent(t, cp, corev1.EventTypeWarning, marinav1alpha1.ReasonEtcdUnreachable)
		// Stages after etcd wait; nothing of the API server exists yet.
		assertCondition(t, got, marinav1alpha1.ConditionAPIServerReady, metav1.ConditionFalse, marinav1alpha1.ReasonWaitingForDependency)

		patch(t, cp, func(cp *marinav1alpha1.ControlPlane) { cp.Spec.Etcd.External.Endpoints = etcd.Endpoints() })
		waitCondition(t, cp, marinav1alpha1.ConditionEtcdReady, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded)
	})
}

// TestUnchangedPassWritesNothing: once a control plane's objects are
// applied, a pass with nothing new sends no apply; a spec change applies
// again, and so does a hand edit of an object the operator made, which it
// takes back.
func TestUnchangedPassWritesNothing(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	createCA(t, ns, "quiet-ca")
	createSecret(t, ns, "etcd-client", etcdTLS)
	cp := externalEtcdControlPlane(ns, "quiet")
	cp.Spec.Certificates.CASecretRef.Name = "quiet-ca"
	create(t, cp)
	// No kubelet runs here, so the API server's rollout never moves: a
	// steady state.
	waitCondition(t, cp, marinav1alpha1.ConditionAPIServerReady, metav1.ConditionFalse, marinav1alpha1.ReasonRolloutInProgress)

	// A new pass (an annotation does not change the generation): every
	// object is found unchanged. pass pokes the control plane and returns
	// how many objects were found unchanged since. With want unknown it
	// waits until that count stops rising for 5 s (a loaded machine may
	// pause a pass between two requests); with want known, until the
	// count reached it and then stayed for a second, a minute at most.
	// The wait for want is not a shortcut: on a machine running other
	// packages' tests, cert-manager may still be settling a Certificate's
	// status, and a pass then stops at the certificates stage and goes
	// on when it requeues. What matters is that no pass applies anything.
	pass := func(want float64) float64 {
		t.Helper()
		before := appliesOf(t, cp, "unchanged")
		patch(t, cp, func(cp *marinav1alpha1.ControlPlane) {
			metav1.SetMetaDataAnnotation(&cp.ObjectMeta, "test.marina.dev/poke", time.Now().Format(time.RFC3339Nano))
		})
		last, since := before, time.Now()
		_ = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			if v := appliesOf(t, cp, "unchanged"); v != last {
				last, since = v, time.Now()
			}
			if math.IsInf(want, 1) {
				return last > before && time.Since(since) > 5*time.Second, nil
			}
			return last-before >= want && time.Since(since) > time.Second, nil
		})
		return last - before
	}
	first := pass(math.Inf(1))
	applied := appliesOf(t, cp, "applied")
	if second := pass(first); second < first {
		got := &marinav1alpha1.ControlPlane{}
		_ = k8s.Get(ctx, client.ObjectKeyFromObject(cp), got)
		t.Errorf("within a minute the passes after the first found %v objects unchanged, the first %v: they did not go through every object; conditions: %+v",
			second, first, got.Status.Conditions)
	}
	if got := appliesOf(t, cp, "applied"); got != applied {
		t.Errorf("a pass with nothing changed applied %v objects", got-applied)
	}
	if first < 10 {
		t.Errorf("a pass found only %v objects unchanged; the Issuers, Certificates, Secrets and API server objects are more", first)
	}

	// A hand edit is a write the operator did not make: the next pass
	// applies that object again and takes the edit back.
	d := &appsv1.Deployment{}
	key := client.ObjectKey{Namespace: ns, Name: "quiet-apiserver"}
	if err := k8s.Get(ctx, key, d); err != nil {
		t.Fatal(err)
	}
	want := *d.Spec.Replicas
	d.Spec.Replicas = ptr.To(want + 5)
	if err := k8s.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the hand edit taken back", func() bool {
		return k8s.Get(ctx, key, d) == nil && *d.Spec.Replicas == want
	})
	if got := appliesOf(t, cp, "applied"); got <= applied {
		t.Error("the hand edit was taken back without an apply")
	}
}

// appliesOf reads marina_controlplane_applies_total of a ControlPlane.
func appliesOf(t *testing.T, cp *marinav1alpha1.ControlPlane, result string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "marina_controlplane_applies_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["namespace"] == cp.Namespace && l["name"] == cp.Name && l["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestNetworkPolicies: a control plane's NetworkPolicies exist, owned by it,
// admit the extra API server clients of the spec, and go with it.
func TestNetworkPolicies(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	createSecret(t, ns, "etcd-client", etcdTLS)
	createCA(t, ns, "np-ca")
	cp := externalEtcdControlPlane(ns, "np")
	cp.Spec.NetworkPolicy.APIServerFrom = []networkingv1.NetworkPolicyPeer{{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "ingress"}},
	}}
	create(t, cp)
	names := []string{"np-isolate", "np-apiserver-clients"}
	policies := map[string]*networkingv1.NetworkPolicy{}
	eventually(t, "the NetworkPolicies of np", func() bool {
		for _, n := range names {
			p := &networkingv1.NetworkPolicy{}
			if k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: n}, p) != nil {
				return false
			}
			policies[n] = p
		}
		return true
	})
	for _, p := range policies {
		assertOwned(t, p, cp)
	}
	isolate := policies["np-isolate"].Spec
	if sel := isolate.PodSelector.MatchLabels; sel["app.kubernetes.io/instance"] != "np" || len(isolate.Ingress) != 1 {
		t.Errorf("np-isolate selects %v with %d ingress rules, want the control plane's pods admitting only each other", sel, len(isolate.Ingress))
	}
	api := policies["np-apiserver-clients"].Spec
	if len(api.Ingress) != 1 {
		t.Fatalf("np-apiserver-clients has %d ingress rules, want 1", len(api.Ingress))
	}
	var sawSpecPeer bool
	for _, peer := range api.Ingress[0].From {
		if peer.NamespaceSelector != nil && peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == "ingress" {
			sawSpecPeer = true
		}
	}
	if !sawSpecPeer {
		t.Errorf("np-apiserver-clients does not admit spec.networkPolicy.apiServerFrom: %+v", api.Ingress[0].From)
	}

	// Deleting the control plane removes them with everything else (last,
	// once its pods are gone).
	if err := k8s.Delete(ctx, cp); err != nil {
		t.Fatal(err)
	}
	waitGone(t, cp, 2*time.Minute)
	eventually(t, "the NetworkPolicies of np to be deleted", func() bool {
		for _, n := range names {
			if !apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: n}, &networkingv1.NetworkPolicy{})) {
				return false
			}
		}
		return true
	})
}

// TestOtherDataCenterAndSuspend: a ControlPlane of another data center and
// a suspended one get a condition saying so and nothing else.
func TestOtherDataCenterAndSuspend(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	createCA(t, ns, "elsewhere-ca")
	createCA(t, ns, "paused-ca")

	elsewhere := externalEtcdControlPlane(ns, "elsewhere")
	elsewhere.Spec.DataCenter = "dc2"
	create(t, elsewhere)
	got := waitCondition(t, elsewhere, marinav1alpha1.ConditionReady, metav1.ConditionFalse, marinav1alpha1.ReasonDataCenterMismatch)
	if len(got.Finalizers) > 0 {
		t.Errorf("finalizers %v on another data center's ControlPlane", got.Finalizers)
	}

	paused := externalEtcdControlPlane(ns, "paused")
	paused.Spec.Suspend = true
	create(t, paused)
	got = waitCondition(t, paused, marinav1alpha1.ConditionReady, metav1.ConditionFalse, marinav1alpha1.ReasonSuspended)
	if got.Status.ObservedGeneration != got.Generation {
		t.Errorf("a suspended ControlPlane's status.observedGeneration = %d, want %d: it was observed", got.Status.ObservedGeneration, got.Generation)
	}

	// The status is written at the end of the pass that found them so,
	// after anything that pass could have made: nothing was.
	if certs := list(t, ns, "cert-manager.io/v1", "CertificateList"); len(certs) > 0 {
		t.Errorf("%d Certificates made for ControlPlanes that must be left alone", len(certs))
	}
	for _, l := range []client.ObjectList{&appsv1.DeploymentList{}, &corev1.ServiceList{}} {
		if err := k8s.List(ctx, l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		if n := meta.LenList(l); n > 0 {
			t.Errorf("%d %T made for ControlPlanes that must be left alone", n, l)
		}
	}
	// Nor does another data center's ControlPlane get metrics here.
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "name" && l.GetValue() == elsewhere.Name && strings.HasPrefix(f.GetName(), "marina_") {
					t.Errorf("metric %s for another data center's ControlPlane", f.GetName())
				}
			}
		}
	}
}

// TestLocalEtcd renders and applies the local etcd StatefulSet with its
// certificates and waits for its members.
func TestLocalEtcd(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	userCA := createCA(t, ns, "local-ca")
	cp := &marinav1alpha1.ControlPlane{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "local"},
		Spec: marinav1alpha1.ControlPlaneSpec{
			Version: "v1.16.0", DataCenter: "dc1",
			Etcd: marinav1alpha1.EtcdSpec{Local: &marinav1alpha1.LocalEtcd{
				Replicas: 3, Storage: marinav1alpha1.EtcdStorage{Type: marinav1alpha1.EtcdStorageEmptyDir},
			}},
			Certificates: marinav1alpha1.CertificatesSpec{CASecretRef: &marinav1alpha1.SecretReference{Name: "local-ca"}},
		},
	}
	create(t, cp)
	got := waitCondition(t, cp, marinav1alpha1.ConditionEtcdReady, metav1.ConditionFalse, marinav1alpha1.ReasonRolloutInProgress)
	assertMessage(t, got, marinav1alpha1.ConditionEtcdReady, "local-etcd")
	sts := &appsv1.StatefulSet{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "local-etcd"}, sts); err != nil {
		t.Fatal(err)
	}
	if ptr.Deref(sts.Spec.Replicas, 0) != 3 {
		t.Errorf("etcd replicas = %v, want 3", sts.Spec.Replicas)
	}
	assertOwned(t, sts, cp)
	// Three members need a PDB, and the engine's components (on by
	// default) their certificates.
	certs := list(t, ns, "cert-manager.io/v1", "CertificateList")
	var names []string
	for _, c := range certs {
		names = append(names, c.GetName())
	}
	for _, want := range []string{"local-etcd-ca", "local-etcd-server", "local-etcd-peer", "local-etcd-client", "local-aggregated-apiserver", "local-webhook", "local-scheduler-client"} {
		if !slices.Contains(names, want) {
			t.Errorf("no Certificate %s among %v", want, names)
		}
	}

	// etcd trusts only its own CA, which signs its three certificates: a
	// client certificate of the user's issuer cannot open it.
	waitCondition(t, cp, marinav1alpha1.ConditionCertificatesReady, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded)
	secret := func(name string) *corev1.Secret {
		t.Helper()
		sec := &corev1.Secret{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, sec); err != nil {
			t.Fatal(err)
		}
		return sec
	}
	etcdCA := parseCert(t, secret("local-etcd-ca-tls").Data["tls.crt"])
	for _, purpose := range []string{"etcd-server", "etcd-peer", "etcd-client"} {
		sec := secret("local-" + purpose + "-tls")
		verifyChain(t, sec.Data["tls.crt"], etcdCA, "etcd's CA")
		if chains(sec.Data["tls.crt"], userCA.Cert) {
			t.Errorf("%s verifies against the user's CA", purpose)
		}
		if trusted := parseCert(t, sec.Data["ca.crt"]); !trusted.Equal(etcdCA) {
			t.Errorf("%s's ca.crt (what etcd and the API servers trust) is %s, want etcd's CA", purpose, trusted.Subject)
		}
	}
}

// --- helpers

// externalEtcdControlPlane is testenv's minimal ControlPlane on the test's
// real etcd with endpoints, a client certificate (Secret etcd-client) and
// a key prefix of its own: the deprecated form, kept for its migration
// period.
func externalEtcdControlPlane(ns, name string) *marinav1alpha1.ControlPlane {
	cp := testenv.ControlPlane(ns, name, "dc1")
	cp.Spec.Etcd.External = &marinav1alpha1.ExternalEtcd{
		Endpoints:    etcd.Endpoints(),
		TLSSecretRef: &marinav1alpha1.SecretReference{Name: "etcd-client"},
		KeyPrefix:    "/marina/dc1/" + ns + "/" + name,
	}
	return cp
}

func namespace(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.Trim(name, "-") + fmt.Sprintf("-%d", time.Now().UnixNano()%10000)
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

func create[T client.Object](t *testing.T, obj T) T {
	t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

func patch(t *testing.T, cp *marinav1alpha1.ControlPlane, mutate func(*marinav1alpha1.ControlPlane)) {
	t.Helper()
	ctx := context.Background()
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(cp), cp); err != nil {
		t.Fatal(err)
	}
	before := cp.DeepCopy()
	mutate(cp)
	if err := k8s.Patch(ctx, cp, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
}

// createCA makes a CA Secret as a user would and returns the CA.
func createCA(t *testing.T, ns, name string) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.KeyPair()
	if err != nil {
		t.Fatal(err)
	}
	createSecret(t, ns, name, map[string][]byte{"tls.crt": kp.CertPEM, "tls.key": kp.KeyPEM})
	return ca
}

func createSecret(t *testing.T, ns, name string, data map[string][]byte) {
	t.Helper()
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data})
}

func createPriorityClass(t *testing.T, name string) {
	t.Helper()
	pc := create(t, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: 1000})
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), pc) })
}

// waitCondition waits until the ControlPlane's condition has the status
// and reason, and returns the ControlPlane as it was then.
func waitCondition(t *testing.T, cp *marinav1alpha1.ControlPlane, typ string, status metav1.ConditionStatus, reason string) *marinav1alpha1.ControlPlane {
	t.Helper()
	got := &marinav1alpha1.ControlPlane{}
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cp), got)
		if err == nil {
			if c := meta.FindStatusCondition(got.Status.Conditions, typ); c != nil && c.Status == status && c.Reason == reason {
				return got
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ControlPlane %s: condition %s never became %s/%s; conditions now:\n%s", cp.Name, typ, status, reason, conditions(got))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func assertCondition(t *testing.T, cp *marinav1alpha1.ControlPlane, typ string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	if c := meta.FindStatusCondition(cp.Status.Conditions, typ); c == nil || c.Status != status || c.Reason != reason {
		t.Errorf("condition %s is not %s/%s:\n%s", typ, status, reason, conditions(cp))
	}
}

func assertMessage(t *testing.T, cp *marinav1alpha1.ControlPlane, typ, want string) {
	t.Helper()
	if c := meta.FindStatusCondition(cp.Status.Conditions, typ); c == nil || !strings.Contains(c.Message, want) {
		t.Errorf("condition %s's message does not say %q:\n%s", typ, want, conditions(cp))
	}
}

func conditions(cp *marinav1alpha1.ControlPlane) string {
	var b strings.Builder
	for _, c := range cp.Status.Conditions {
		fmt.Fprintf(&b, "  %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	return b.String()
}

// waitEvent waits for an Event about the ControlPlane with the reason.
func waitEvent(t *testing.T, cp *marinav1alpha1.ControlPlane, eventType, reason string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		events := &eventsv1.EventList{}
		if err := k8s.List(context.Background(), events, client.InNamespace(cp.Namespace)); err == nil {
			for _, e := range events.Items {
				if e.Regarding.Name == cp.Name && e.Regarding.Kind == "ControlPlane" && e.Type == eventType && e.Reason == reason && e.Note != "" {
					return
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("no %s Event %s about ControlPlane %s", eventType, reason, cp.Name)
}

func waitGone(t *testing.T, cp *marinav1alpha1.ControlPlane, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	got := &marinav1alpha1.ControlPlane{}
	for {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(cp), got)
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ControlPlane %s still exists after %s; conditions:\n%s", cp.Name, timeout, conditions(got))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func list(t *testing.T, ns, apiVersion, kind string) []unstructured.Unstructured {
	t.Helper()
	l := &unstructured.UnstructuredList{}
	l.SetAPIVersion(apiVersion)
	l.SetKind(kind)
	if err := k8s.List(context.Background(), l, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func assertOwned(t *testing.T, obj metav1.Object, cp *marinav1alpha1.ControlPlane) {
	t.Helper()
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.Kind != "ControlPlane" || ref.Name != cp.Name {
		t.Errorf("%s is not controlled by ControlPlane %s: %+v", obj.GetName(), cp.Name, obj.GetOwnerReferences())
	}
	if obj.GetLabels()["app.kubernetes.io/managed-by"] != render.ManagedBy || obj.GetLabels()[marinav1alpha1.LabelControlPlane] != cp.Name {
		t.Errorf("%s lacks the control plane's labels: %v", obj.GetName(), obj.GetLabels())
	}
}

// verifyChain checks that certPEM was signed by ca and returns it.
func parseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("no PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// chains says whether a PEM certificate verifies against root.
func chains(certPEM []byte, root *x509.Certificate) bool {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return false
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return false
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

func verifyChain(t *testing.T, certPEM []byte, root *x509.Certificate, what string) *x509.Certificate {
	t.Helper()
	leaf := parseCert(t, certPEM)
	if !chains(certPEM, root) {
		t.Errorf("certificate %s does not verify against %s", leaf.Subject, what)
	}
	return leaf
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// eventually waits up to a minute for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// createClusterIssuer makes a CA ClusterIssuer as a platform team would,
// its CA Secret in cert-manager's cluster resource namespace.
func createClusterIssuer(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	crn := certmanager.DefaultClusterResourceNamespace
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: crn}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	createCA(t, crn, name)
	issuer := &unstructured.Unstructured{}
	issuer.SetAPIVersion("cert-manager.io/v1")
	issuer.SetKind("ClusterIssuer")
	issuer.SetName(name)
	if err := unstructured.SetNestedField(issuer.Object, name, "spec", "ca", "secretName"); err != nil {
		t.Fatal(err)
	}
	create(t, issuer)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), issuer) })
}
