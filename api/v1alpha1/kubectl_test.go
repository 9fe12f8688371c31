package v1alpha1_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	v1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/testenv"
)

// kubectl runs the kubectl built from source next to kube-apiserver against
// the test API server, as a person would.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	bin := filepath.Join(os.Getenv(testenv.AssetsEnv), "kubectl")
	kubeconfig, err := env.KubeconfigFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, append([]string{"--kubeconfig", kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestKubectlGetShowsPrinterColumns(t *testing.T) {
	ctx := context.Background()
	cp := fullControlPlane("printer-columns")
	if err := k8s.Create(ctx, cp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, cp) })
	cp.Status.Endpoint = "https://printer-columns.team-a.svc:443"
	meta.SetStatusCondition(&cp.Status.Conditions, metav1.Condition{
		Type: v1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1.ReasonSecretNotFound,
		Message: `Secret team-a/team-a-ca not found: create it with keys tls.crt and tls.key`,
	})
	if err := k8s.Status().Update(ctx, cp); err != nil {
		t.Fatal(err)
	}

	out := kubectl(t, "get", "cp", "-n", "team-a", "printer-columns", "-o", "wide")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a header and one row, got:\n%s", out)
	}
	header, row := strings.Fields(lines[0]), strings.Fields(lines[1])
	wantHeader := []string{"NAME", "DATA", "CENTER", "VERSION", "READY", "REASON", "ENDPOINT", "KEY", "AGE"}
	if strings.Join(header, " ") != strings.Join(wantHeader, " ") {
		t.Errorf("header %q, want %q", header, wantHeader)
	}
	wantRow := []string{"printer-columns", "fra1", "v1.16.0", "False", "SecretNotFound", "https://printer-columns.team-a.svc:443"}
	if len(row) < len(wantRow) || strings.Join(row[:len(wantRow)], " ") != strings.Join(wantRow, " ") {
		t.Errorf("row %q, want it to start with %q", row, wantRow)
	}

	// The category lists every Marina kind at once.
	kinds := kubectl(t, "api-resources", "--api-group", "marina.dev", "-o", "name")
	for _, want := range []string{"controlplanes.marina.dev", "memberclusters.marina.dev", "registrationpolicies.marina.dev", "policysets.marina.dev", "peers.marina.dev"} {
		if !strings.Contains(kinds, want) {
			t.Errorf("kubectl api-resources lacks %s:\n%s", want, kinds)
		}
	}
}

func TestKubectlExplainDocumentsFields(t *testing.T) {
	cases := []struct {
		field string
		want  string
	}{
		{"controlplane", "one federation control plane"},
		{"controlplane.spec.etcd.external.keyPrefix", "must be unique among the control planes"},
		{"controlplane.spec.certificates.caSecretRef", "never changed or deleted"},
		{"controlplane.spec.crds.http.sha256", "is rejected and never applied"},
		{"controlplane.spec.encryption.kms.vault.auth", "exactly one of token, appRole or kubernetes"},
		{"membercluster.spec.clusterRef", "kubeconfig Secret"},
		{"registrationpolicy.spec.approval", "Automatic"},
		{"policyset.spec.driftMode", "Report only records it"},
		{"peer.spec.kubeconfigSecretRef", "management cluster"},
	}
	for _, tc := range cases {
		t.Run(tc.field, func(t *testing.T) {
			out := kubectl(t, "explain", tc.field)
			if !strings.Contains(strings.Join(strings.Fields(out), " "), tc.want) {
				t.Errorf("kubectl explain %s does not say %q:\n%s", tc.field, tc.want, out)
			}
		})
	}
}

// TestEveryFieldIsDocumented walks the published schemas: a field without a
// description reads as a blank in kubectl explain.
func TestEveryFieldIsDocumented(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "charts", "marina", "crds", "*.yaml"))
	if err != nil || len(files) != 6 {
		t.Fatalf("want 6 CRD files, got %v (%v)", files, err)
	}
	for _, f := range files {
		undocumented := undocumentedFields(t, f)
		for _, path := range undocumented {
			t.Errorf("%s: %s has no description", filepath.Base(f), path)
		}
	}
}

func undocumentedFields(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &crd); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var missing []string
	root := crd.Spec.Names.Kind
	var walk func(path string, s apiextensionsv1.JSONSchemaProps)
	walk = func(path string, s apiextensionsv1.JSONSchemaProps) {
		for name, p := range s.Properties {
			child := path + "." + name
			// metadata is ObjectMeta, documented by Kubernetes itself.
			if p.Description == "" && child != root+".metadata" {
				missing = append(missing, child)
			}
			walk(child, p)
		}
		if s.Items != nil && s.Items.Schema != nil {
			walk(path+"[]", *s.Items.Schema)
		}
		if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
			walk(path+"{}", *s.AdditionalProperties.Schema)
		}
	}
	for _, v := range crd.Spec.Versions {
		walk(root, *v.Schema.OpenAPIV3Schema)
	}
	return missing
}
