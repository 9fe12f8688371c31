package certmanager_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/marina-platform/marina/internal/localenv/certmanager"
	"github.com/marina-platform/marina/internal/testenv"
)

// Bounds every wait for the controller; issuance from a CA takes seconds.
const issueTimeout = 60 * time.Second

// TestCAIssuance runs the real cert-manager controllers against a real API
// server: a Certificate from a namespaced CA Issuer and one from a
// ClusterIssuer become Ready, their Secrets hold keys and certificates that
// chain to the CA with the requested names, and a deleted Secret comes back.
func TestCAIssuance(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	binary := filepath.Join(os.Getenv(testenv.AssetsEnv), certmanager.BinaryName)
	if _, err := os.Stat(binary); err != nil {
		t.Fatalf("no cert-manager controller at %s (run `make test-binaries`, which builds it from hack/tools/cert-manager): %v", binary, err)
	}

	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop test environment: %v", err)
		}
	})

	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := certmanager.CRDs(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	crds, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: files, ErrorIfPathMissing: true})
	if err != nil {
		t.Fatalf("install cert-manager CRDs: %v", err)
	}
	if len(crds) != len(files) {
		t.Fatalf("installed %d CRDs from %d files", len(crds), len(files))
	}

	dir := t.TempDir()
	kubeconfig, err := env.KubeconfigFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := env.Client
	const appNS = "app"
	for _, ns := range []string{appNS, certmanager.DefaultClusterResourceNamespace} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}

	caCert, caSecretData := newCA(t)
	for _, ns := range []string{appNS, certmanager.DefaultClusterResourceNamespace} {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "ca", Namespace: ns},
			Type:       corev1.SecretTypeTLS,
			Data:       caSecretData,
		}
		if err := c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	create(ctx, t, c, object("Issuer", appNS, "ca", map[string]any{"ca": map[string]any{"secretName": "ca"}}))
	create(ctx, t, c, object("ClusterIssuer", "", "ca", map[string]any{"ca": map[string]any{"secretName": "ca"}}))

	ctrl := certmanager.Controller{Binary: binary, Kubeconfig: kubeconfig, Dir: dir, Verbosity: 2}
	if _, err := ctrl.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ctrl.Stop(); err != nil {
			t.Errorf("stop cert-manager: %v", err)
		}
		if t.Failed() {
			logTail(t, ctrl.LogFile())
		}
	})

	certs := []struct {
		name, issuerKind string
		dnsNames         []string
	}{
		{"web", "Issuer", []string{"web.app.svc", "web.example.test"}},
		{"api", "ClusterIssuer", []string{"api.example.test"}},
	}
	for _, cert := range certs {
		create(ctx, t, c, object("Certificate", appNS, cert.name, map[string]any{
			"secretName": cert.name + "-tls",
			"dnsNames":   toAny(cert.dnsNames),
			"issuerRef":  map[string]any{"name": "ca", "kind": cert.issuerKind, "group": "cert-manager.io"},
		}))
	}
	start := time.Now()
	serials := map[string]*big.Int{}
	for _, cert := range certs {
		waitReady(ctx, t, c, appNS, cert.name)
		serials[cert.name] = checkSecret(ctx, t, c, appNS, cert.name+"-tls", caCert, cert.dnsNames, nil)
	}
	t.Logf("both Certificates Ready %s after creation", time.Since(start).Round(time.Millisecond))

	// A deleted Secret is noticed and the certificate issued again.
	cert := certs[0]
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: cert.name + "-tls", Namespace: appNS}}
	if err := c.Delete(ctx, secret); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	serial := checkSecret(ctx, t, c, appNS, secret.Name, caCert, cert.dnsNames, serials[cert.name])
	waitReady(ctx, t, c, appNS, cert.name)
	if serial.Cmp(serials[cert.name]) == 0 {
		t.Errorf("reissued certificate has the deleted one's serial %v", serial)
	}
	t.Logf("deleted Secret reissued after %s", time.Since(start).Round(time.Millisecond))
}

// newCA returns a self-signed CA certificate and the data of a
// kubernetes.io/tls Secret that holds it and its key.
func newCA(t *testing.T) (*x509.Certificate, map[string][]byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "marina test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return cert, map[string][]byte{
		corev1.TLSCertKey:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
}

// object is a cert-manager.io/v1 object; cert-manager's Go types stay out
// of Marina's module.
func object(kind, namespace, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion("cert-manager.io/v1")
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

func create(ctx context.Context, t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(ctx, obj); err != nil {
		t.Fatalf("create %s %s: %v", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// waitReady waits for the Certificate's Ready condition to be True.
func waitReady(ctx context.Context, t *testing.T, c client.Client, namespace, name string) {
	t.Helper()
	last := "no Ready condition yet"
	err := poll(ctx, func() (bool, error) {
		u := object("Certificate", namespace, name, nil)
		if err := c.Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
			return false, err
		}
		conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, cond := range conditions {
			m, _ := cond.(map[string]any)
			if m["type"] == "Ready" {
				last = fmt.Sprintf("Ready=%v %v: %v", m["status"], m["reason"], m["message"])
				return m["status"] == "True", nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("Certificate %s/%s not Ready within %s (%s): %v", namespace, name, issueTimeout, last, err)
	}
}

// checkSecret waits for the Secret to hold a certificate other than the one
// with serial old (any when nil), checks that it matches its key, chains to
// ca and carries exactly dnsNames, and returns its serial.
func checkSecret(ctx context.Context, t *testing.T, c client.Client, namespace, name string, ca *x509.Certificate, dnsNames []string, old *big.Int) *big.Int {
	t.Helper()
	var s corev1.Secret
	var leaf *x509.Certificate
	err := poll(ctx, func() (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); apierrors.IsNotFound(err) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		pair, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
		if err != nil {
			return false, nil // not written yet, or written in two steps
		}
		leaf = pair.Leaf
		return old == nil || leaf.SerialNumber.Cmp(old) != 0, nil
	})
	if err != nil {
		t.Fatalf("Secret %s/%s: no new certificate within %s: %v", namespace, name, issueTimeout, err)
	}

	roots := x509.NewCertPool()
	roots.AddCert(ca)
	intermediates := x509.NewCertPool()
	rest := s.Data[corev1.TLSCertKey]
	for i := 0; ; i++ {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if i > 0 {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatalf("Secret %s/%s: tls.crt: %v", namespace, name, err)
			}
			intermediates.AddCert(cert)
		}
	}
	for _, dns := range dnsNames {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, DNSName: dns}); err != nil {
			t.Errorf("Secret %s/%s: certificate does not verify for %s against the CA: %v", namespace, name, dns, err)
		}
	}
	if got := slices.Sorted(slices.Values(leaf.DNSNames)); !slices.Equal(got, slices.Sorted(slices.Values(dnsNames))) {
		t.Errorf("Secret %s/%s: DNS names %v, want %v", namespace, name, got, dnsNames)
	}
	if caPEM := s.Data["ca.crt"]; !bytes.Contains(caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})) {
		t.Errorf("Secret %s/%s: ca.crt is not the CA", namespace, name)
	}
	return leaf.SerialNumber
}

func poll(ctx context.Context, done func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, issueTimeout)
	defer cancel()
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// logTail shows the end of the controller's log when a test fails.
func logTail(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Logf("cert-manager log: %v", err)
		return
	}
	const limit = 8 << 10
	if len(data) > limit {
		data = data[len(data)-limit:]
	}
	t.Logf("end of %s:\n%s", path, data)
}
