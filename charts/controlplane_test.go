package charts_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestControlPlaneChartLints runs `helm lint --strict` over charts/
// controlplane with its example values, and checks that `helm template`
// renders what the operator renders with Helm's engine (the golden files of
// operators/controlplane/render cover the objects themselves).
func TestControlPlaneChartLints(t *testing.T) {
	h := newHelm(t)
	dir, err := filepath.Abs("controlplane")
	if err != nil {
		t.Fatal(err)
	}
	for _, values := range []string{"local-etcd-values.yaml", "external-etcd-values.yaml"} {
		t.Run(values, func(t *testing.T) {
			file := filepath.Join(dir, "ci", values)
			if _, err := h.run("lint", "--strict", "--kube-version", kubeVersion, dir, "-f", file); err != nil {
				t.Error(err)
			}
			out, err := h.run("template", "cp", dir, "--namespace", "fed", "--kube-version", kubeVersion, "-f", file)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := decodeAll([]byte(out))
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) < 8 {
				t.Errorf("helm template rendered %d objects", len(objs))
			}
		})
	}
	// Without the values the operator always sets, the chart refuses.
	if out, err := h.run("template", "cp", dir, "--kube-version", kubeVersion); err == nil || !strings.Contains(out, "name") {
		t.Errorf("rendering without values: err %v, output %s", err, out)
	}
}
