package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/marina-platform/marina/internal/localenv"
	"github.com/marina-platform/marina/internal/localenv/network"
	"github.com/marina-platform/marina/operators/controlplane/engine"
)

var certificateGVR = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}

// TestCertManagerIssuesCASignedCertificates asks each management cluster's
// cert-manager for a certificate from the environment's ClusterIssuer and
// verifies the issued chain against the environment's CA.
func TestCertManagerIssuesCASignedCertificates(t *testing.T) {
	ca, err := env.CA()
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, dc := range env.DataCenters() {
		t.Run(dc.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cs := clientset(t, dc.Kubeconfig())
			dyn := dynamicClient(t, dc.Kubeconfig())
			ns := "e2e-certs"
			if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

			dnsName := "api." + dc.Name + ".marina.test"
			cert := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
				"metadata": map[string]any{"name": "e2e", "namespace": ns},
				"spec": map[string]any{
					"secretName": "e2e-tls", "dnsNames": []any{dnsName}, "duration": "24h",
					"issuerRef": map[string]any{"name": localenv.ClusterIssuerName, "kind": "ClusterIssuer"},
				},
			}}
			if _, err := dyn.Resource(certificateGVR).Namespace(ns).Create(ctx, cert, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			waitFor(ctx, t, "Certificate e2e Ready", func() bool {
				got, err := dyn.Resource(certificateGVR).Namespace(ns).Get(ctx, "e2e", metav1.GetOptions{})
				return err == nil && conditionTrue(got, "Ready")
			})
			secret, err := cs.CoreV1().Secrets(ns).Get(ctx, "e2e-tls", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(secret.Data[corev1.TLSCertKey])
			if block == nil {
				t.Fatalf("tls.crt holds no PEM certificate")
			}
			leaf, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: dnsName}); err != nil {
				t.Errorf("issued certificate does not verify against the environment's CA for %s: %v", dnsName, err)
			}
		})
	}
}

// TestVaultTransitEncryptsAndDecrypts uses the shared Vault the way the KMS
// plugin will: encrypt with the transit key, decrypt it back.
func TestVaultTransitEncryptsAndDecrypts(t *testing.T) {
	v := env.Vault()
	client, err := v.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	plaintext := "a secret from the e2e suite"
	enc, err := client.Logical().WriteWithContext(ctx, v.Mount()+"/encrypt/"+v.Key(),
		map[string]any{"plaintext": base64.StdEncoding.EncodeToString([]byte(plaintext))})
	if err != nil {
		t.Fatalf("encrypt: %v", err)
	}
	ciphertext, _ := enc.Data["ciphertext"].(string)
	if !strings.HasPrefix(ciphertext, "vault:v") || strings.Contains(ciphertext, plaintext) {
		t.Fatalf("ciphertext %q is not a transit ciphertext", ciphertext)
	}
	dec, err := client.Logical().WriteWithContext(ctx, v.Mount()+"/decrypt/"+v.Key(), map[string]any{"ciphertext": ciphertext})
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	got, _ := base64.StdEncoding.DecodeString(dec.Data["plaintext"].(string))
	if string(got) != plaintext {
		t.Errorf("decrypted %q, want %q", got, plaintext)
	}
}

// TestCRDBundleServerServesBundles downloads a bundle the way an air-gapped
// control plane does, from inside the environment's network, and checks it
// against its published sha256.
func TestCRDBundleServerServesBundles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dc := env.DataCenters()[0]
	inNode := &http.Client{Transport: &http.Transport{DialContext: network.DialContext(dc.NodeHost.Name)}, Timeout: 5 * time.Second}
	bundles := map[string]string{"marina-crds.tar.gz": "crds/marina.dev_controlplanes.yaml"}
	for _, r := range engine.Releases() {
		// The engine's own bundle, as its releases lay it out.
		bundles[localenv.KarmadaCRDBundle(r.Checked)] = "crds/bases/work/work.karmada.io_resourcebindings.yaml"
	}
	for name, want := range bundles {
		bundle := fetch(ctx, t, inNode, localenv.BundleURL(name))
		sumLine := fetch(ctx, t, inNode, localenv.BundleURL(name+".sha256"))
		sum := sha256.Sum256(bundle)
		if fields := strings.Fields(string(sumLine)); len(fields) == 0 || fields[0] != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: sha256 %x does not match the published %q", name, sum, sumLine)
			continue
		}
		gz, err := gzip.NewReader(bytes.NewReader(bundle))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(gz)
		found := false
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			found = found || h.Name == want
		}
		if !found {
			t.Errorf("%s has no %s", name, want)
		}
	}
}

// TestMarinaRunsInEveryDataCenter checks what `helm install charts/marina`
// gave each management cluster: every operator rolled out, holding its
// leader Lease, and the tiered PriorityClasses.
func TestMarinaRunsInEveryDataCenter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, dc := range env.DataCenters() {
		cs := clientset(t, dc.Kubeconfig())
		for _, op := range localenv.Operators {
			name := "marina-" + op
			waitFor(ctx, t, dc.Name+": "+name+" holds its leader Lease", func() bool {
				var lease *coordinationv1.Lease
				lease, err := cs.CoordinationV1().Leases(localenv.MarinaNamespace).Get(ctx, name+".marina.dev", metav1.GetOptions{})
				return err == nil && lease.Spec.HolderIdentity != nil && strings.HasPrefix(*lease.Spec.HolderIdentity, name+"-")
			})
		}
		pcs, err := cs.SchedulingV1().PriorityClasses().List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/part-of=marina"})
		if err != nil {
			t.Fatal(err)
		}
		if len(pcs.Items) < 3 {
			t.Errorf("%s: %d Marina PriorityClasses, want the tiers of charts/marina", dc.Name, len(pcs.Items))
		}
	}
}

func fetch(ctx context.Context, t *testing.T, client *http.Client, url string) []byte {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return body
}

func dynamicClient(t *testing.T, kubeconfig string) dynamic.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return dynamic.NewForConfigOrDie(cfg)
}

func conditionTrue(u *unstructured.Unstructured, condType string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == condType {
			return m["status"] == "True"
		}
	}
	return false
}
