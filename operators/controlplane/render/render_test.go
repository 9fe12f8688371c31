package render

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

// Run `go test ./operators/controlplane/render -update` after a deliberate
// change to the chart or the mapping, and review the diff of testdata/.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestChartGolden renders the chart's own example values (charts/
// controlplane/ci, Helm's convention) and compares every object with the
// golden file.
func TestChartGolden(t *testing.T) {
	c := load(t)
	for _, name := range []string{"local-etcd-values", "external-etcd-values", "encryption-values"} {
		t.Run(name, func(t *testing.T) {
			objs, err := c.RenderMap("fed-fra1", ciValues(t, name))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "chart-"+name+".golden.yaml"), objs)
		})
	}
}

// TestControlPlaneGolden maps ControlPlanes (testdata/*.controlplane.yaml)
// onto values and renders them: the whole path the operator takes.
func TestControlPlaneGolden(t *testing.T) {
	c := load(t)
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.controlplane.yaml"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no ControlPlanes in testdata: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".controlplane.yaml")
		t.Run(name, func(t *testing.T) {
			cp := readControlPlane(t, in)
			objs, err := c.Render(cp.Namespace, ValuesFor(cp, testOptions(cp)))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", name+".golden.yaml"), objs)
		})
	}
}

// testOptions is what the operator would pass for cp: the Issuer made from
// a CA Secret and the version table's images. (Certificate checksums are
// set after rendering: TestAnnotateCertificates.)
func testOptions(cp *marinav1alpha1.ControlPlane) Options {
	opts := Options{
		Images: ImagesFor(cp.Spec.Version),
	}
	if ref := cp.Spec.Certificates.IssuerRef; ref != nil {
		opts.IssuerRef = IssuerValues{Name: ref.Name, Kind: ref.Kind, Group: ref.Group}
	} else {
		opts.IssuerRef = IssuerValues{Name: cp.Name + "-ca", Kind: "Issuer", Group: "cert-manager.io"}
	}
	return opts
}

func TestRenderRejectsBadValues(t *testing.T) {
	c := load(t)
	cp := readControlPlane(t, filepath.Join("testdata", "local-environment.controlplane.yaml"))
	tests := []struct {
		name   string
		mutate func(*Values)
		want   string
	}{
		{"no issuer", func(v *Values) { v.Certificates.IssuerRef.Name = "" }, "issuerRef"},
		{"too many replicas", func(v *Values) { v.Components.APIServer.Replicas = 11 }, "replicas"},
		{"bad anti-affinity", func(v *Values) { v.Components.KubeControllerManager.AntiAffinity = "Sometimes" }, "antiAffinity"},
		{"no data center", func(v *Values) { v.DataCenter = "" }, "dataCenter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := ValuesFor(cp, testOptions(cp))
			tc.mutate(&v)
			_, err := c.Render(cp.Namespace, v)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error naming %q, got %v", tc.want, err)
			}
		})
	}
}

func TestImagesFor(t *testing.T) {
	for version, want := range map[string]ImageVersions{
		"v1.16.0":       {Kubernetes: "v1.34.1", Etcd: "3.6.0-0"},
		"v1.16.3-rc.1":  {Kubernetes: "v1.34.1", Etcd: "3.6.0-0"},
		"v1.17.5":       {Kubernetes: "v1.35.2", Etcd: "3.6.6-0"},
		"v1.18.2":       {Kubernetes: "v1.35.2", Etcd: "3.6.6-0"},
		"v9.0.0":        {},
		"not-a-version": {},
	} {
		if got := ImagesFor(version); got != want {
			t.Errorf("ImagesFor(%q) = %+v, want %+v", version, got, want)
		}
	}
}

func load(t *testing.T) *Chart {
	t.Helper()
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readControlPlane(t *testing.T, file string) *marinav1alpha1.ControlPlane {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cp := &marinav1alpha1.ControlPlane{}
	if err := yaml.UnmarshalStrict(data, cp); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if cp.Namespace == "" {
		t.Fatalf("%s: metadata.namespace is needed", file)
	}
	cp.CreationTimestamp = metav1.Time{}
	return cp
}

func golden(t *testing.T, file string, objs []*unstructured.Unstructured) {
	t.Helper()
	var got bytes.Buffer
	for _, o := range objs {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		got.WriteString("---\n")
		got.Write(data)
	}
	if *update {
		if err := os.WriteFile(file, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("rendered objects differ from %s; run `go test ./operators/controlplane/render -update` and review the diff:\n%s",
			file, firstDifference(string(want), got.String()))
	}
}

// firstDifference shows a few lines around the first line that differs, so
// the failure says what changed without dumping two whole manifests.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		if i < len(w) && i < len(g) && w[i] == g[i] {
			continue
		}
		lo := max(0, i-3)
		return "want:\n" + strings.Join(w[lo:min(len(w), i+3)], "\n") + "\ngot:\n" + strings.Join(g[lo:min(len(g), i+3)], "\n")
	}
	return ""
}

// TestEtcdIssuerLegacy: a control plane whose local etcd runs with
// certificates of the user's issuer keeps them (and gets no etcd CA), so
// that running members are never split between two CAs; any other gets
// etcd's own CA.
func TestEtcdIssuerLegacy(t *testing.T) {
	c := load(t)
	cp := readControlPlane(t, filepath.Join("testdata", "production.controlplane.yaml"))
	if cp.Spec.Etcd.Local == nil {
		t.Fatal("the production fixture has no local etcd")
	}
	for _, legacy := range []bool{false, true} {
		opts := testOptions(cp)
		opts.EtcdIssuerLegacy = legacy
		objs, err := c.Render(cp.Namespace, ValuesFor(cp, opts))
		if err != nil {
			t.Fatal(err)
		}
		want := cp.Name + "-etcd-ca"
		if legacy {
			want = opts.IssuerRef.Name
		}
		hasCA := false
		for _, o := range objs {
			if o.GetKind() == "Certificate" && o.GetName() == cp.Name+"-etcd-ca" {
				hasCA = true
			}
			if o.GetKind() != "Certificate" || !strings.HasPrefix(o.GetName(), cp.Name+"-etcd-") || o.GetName() == cp.Name+"-etcd-ca" {
				continue
			}
			if got, _, _ := unstructured.NestedString(o.Object, "spec", "issuerRef", "name"); got != want {
				t.Errorf("legacy=%t: %s is signed by %s, want %s", legacy, o.GetName(), got, want)
			}
		}
		if hasCA == legacy {
			t.Errorf("legacy=%t: etcd CA rendered = %t", legacy, hasCA)
		}
	}
}

// ciValues reads one of the chart's CI values files (charts/controlplane/ci).
func ciValues(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "charts", "controlplane", "ci", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var vals map[string]any
	if err := yaml.Unmarshal(data, &vals); err != nil {
		t.Fatal(err)
	}
	return vals
}
