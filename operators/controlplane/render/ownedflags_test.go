package render

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

// tunableFlags are the flags the chart sets that extraArgs may replace:
// behaviour a platform team may reasonably tune, nothing that carries a
// certificate, a key, an address the Services or probes depend on, or a
// setting an API field owns.
var tunableFlags = map[string][]string{
	"apiServer": {"tls-min-version", "enable-bootstrap-token-auth", "enable-admission-plugins", "disable-admission-plugins",
		"allow-privileged", "service-cluster-ip-range", "profiling", "shutdown-delay-duration"},
	"kubeControllerManager": {"controllers", "leader-elect", "profiling"},
	"aggregatedAPIServer":   {"tls-min-version"},
	"metricsAdapter":        {"tls-min-version"},
	"search":                {"tls-min-version"},
	"controllerManager":     {"leader-elect"},
	"scheduler":             {"leader-elect"},
	"descheduler":           {"leader-elect"},
	"webhook":               {},
}

// TestOwnedFlagsMatchTheChart: every flag the chart sets on a component is
// either owned (marinav1alpha1.OwnedFlags, which validation refuses in
// extraArgs) or tunable, and every owned flag is one the chart sets, so a
// new flag in a template must be classified here and the list never goes
// stale.
func TestOwnedFlagsMatchTheChart(t *testing.T) {
	// Every fixture (ControlPlanes and the chart's CI values), without the
	// user's extraArgs: local and external etcd, encryption, every component.
	c := load(t)
	var objs []*unstructured.Unstructured
	local := readControlPlane(t, filepath.Join("testdata", "local-environment.controlplane.yaml"))
	// Production's components (all on) on the local environment's
	// external etcd too.
	external := readControlPlane(t, filepath.Join("testdata", "production.controlplane.yaml"))
	external.Spec.Etcd = local.Spec.Etcd
	for _, cp := range []*marinav1alpha1.ControlPlane{readControlPlane(t, filepath.Join("testdata", "production.controlplane.yaml")), local, external} {
		for _, spec := range cp.Spec.Components.ByKey() {
			spec.ExtraArgs = nil
		}
		o, err := c.Render(cp.Namespace, ValuesFor(cp, testOptions(cp)))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o...)
	}
	for _, name := range []string{"local-etcd-values", "external-etcd-values", "encryption-values"} {
		vals := ciValues(t, name)
		dropExtraArgs(vals)
		o, err := c.RenderMap("fed-fra1", vals)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o...)
	}
	keys := map[string]string{
		"apiserver": "apiServer", "kube-controller-manager": "kubeControllerManager", "aggregated-apiserver": "aggregatedAPIServer",
		"controller-manager": "controllerManager", "scheduler": "scheduler", "webhook": "webhook", "descheduler": "descheduler",
		"metrics-adapter": "metricsAdapter", "search": "search",
	}
	seen := map[string]bool{}
	rendered := map[string][]string{}
	for _, obj := range objs {
		if obj.GetKind() != "Deployment" {
			continue
		}
		key, ok := keys[obj.GetLabels()["app.kubernetes.io/component"]]
		if !ok {
			continue
		}
		seen[key] = true
		for _, f := range chartFlags(t, obj) {
			if !slices.Contains(marinav1alpha1.OwnedFlags[key], f) && !slices.Contains(tunableFlags[key], f) && !slices.Contains(rendered[key], f) {
				t.Errorf("spec.components.%s: the chart sets --%s, which is neither owned (marinav1alpha1.OwnedFlags) nor tunable (tunableFlags): classify it", key, f)
			}
			rendered[key] = append(rendered[key], f)
		}
	}
	for key, owned := range marinav1alpha1.OwnedFlags {
		for _, f := range owned {
			if !slices.Contains(rendered[key], f) {
				t.Errorf("spec.components.%s: --%s is owned but the chart never sets it", key, f)
			}
		}
	}
	for key := range marinav1alpha1.OwnedFlags {
		if !seen[key] {
			t.Errorf("the fixture renders no workload of spec.components.%s: enable it there", key)
		}
	}
}

// chartFlags are the flag names of a workload's main container (the one
// named as its app.kubernetes.io/name label).
func chartFlags(t *testing.T, obj *unstructured.Unstructured) []string {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
	for _, raw := range containers {
		c, _ := raw.(map[string]any)
		if c["name"] != obj.GetLabels()["app.kubernetes.io/name"] {
			continue
		}
		args, _, _ := unstructured.NestedStringSlice(c, "args")
		var flags []string
		for _, a := range args {
			name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			flags = append(flags, name)
		}
		return flags
	}
	t.Fatalf("%s has no container %s", obj.GetName(), obj.GetLabels()["app.kubernetes.io/name"])
	return nil
}

// dropExtraArgs removes every extraArgs from chart values.
func dropExtraArgs(v any) {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "extraArgs")
		for _, e := range x {
			dropExtraArgs(e)
		}
	case []any:
		for _, e := range x {
			dropExtraArgs(e)
		}
	}
}
