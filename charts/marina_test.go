// Package charts_test checks charts/marina the way its users meet it: through
// the helm CLI built from source (`make test-binaries`). Rendering tests run
// `helm lint` and `helm template`; the integration test installs, upgrades
// and uninstalls the chart on a real kube-apiserver.
package charts_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/marina-platform/marina/internal/operator"
	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/controlplane/controller"
)

const (
	release   = "marina"
	namespace = "marina-system"
)

// kubeVersion is the Kubernetes version `helm lint` and `helm template`
// render for: the oldest the chart supports (Chart.yaml kubeVersion). Without
// it they assume the version stamped into helm at build time, which a plain
// `go build` leaves at v1.20.0.
const kubeVersion = "v1.30.0"

// operators are the chart's operators, by their folder under operators/.
var operators = []string{"controlplane", "register", "sync"}

// allOperators turns on every operator (all are on by default) and peering
// with data center dc2, so that what it grants is reviewed too.
var allOperators = []string{"--set", "operators.sync.enabled=true", "--set", "peers.dataCenters={dc2}"}

// localEnvValues are the values the local environment installs the chart
// with (internal/localenv); they must keep working.
var localEnvValues = []string{
	"--set", "dataCenter=dc1",
	"--set", "image.registry=marina.local",
	"--set", "image.tag=dev",
	"--set", "image.pullPolicy=Never",
}

// priorityClasses are the classes the chart creates by default and their
// values; ControlPlane spec.priorityClassName refers to them by name.
var priorityClasses = map[string]int32{
	"marina-control-plane-critical": 1000000,
	"marina-operator":               900000,
	"marina-control-plane":          800000,
	"marina-control-plane-low":      100000,
}

// helmCLI runs the helm binary under $KUBEBUILDER_ASSETS with its cache,
// configuration and data in a temporary folder, so a test neither reads nor
// writes the user's own helm setup.
type helmCLI struct {
	bin, home string
}

func newHelm(t *testing.T) helmCLI {
	t.Helper()
	assets := os.Getenv(testenv.AssetsEnv)
	if assets == "" {
		t.Fatalf("%s is not set: run `make test`, or point it at the folder `make test-binaries` fills (it holds helm)", testenv.AssetsEnv)
	}
	bin := filepath.Join(assets, "helm")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no helm in %s=%s (run `make test-binaries`, which builds it from hack/tools/helm): %v", testenv.AssetsEnv, assets, err)
	}
	return helmCLI{bin: bin, home: t.TempDir()}
}

// run runs helm with args and returns its combined output.
func (h helmCLI) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(h.home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(h.home, "config"),
		"HELM_DATA_HOME="+filepath.Join(h.home, "data"),
		"KUBECONFIG="+filepath.Join(h.home, "no-kubeconfig"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func chartDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("marina")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// rendered is what `helm template` produced, keyed by kind and name.
type rendered map[string]*unstructured.Unstructured

func (r rendered) get(t *testing.T, kind, name string, into runtime.Object) {
	t.Helper()
	u, ok := r[kind+"/"+name]
	if !ok {
		t.Fatalf("no %s %s rendered; got %v", kind, name, r.keys())
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatalf("%s %s: %v", kind, name, err)
	}
}

func (r rendered) keys() []string {
	var keys []string
	for k := range r {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (r rendered) ofKind(kind string) []string {
	var names []string
	for _, k := range r.keys() {
		if name, ok := strings.CutPrefix(k, kind+"/"); ok {
			names = append(names, name)
		}
	}
	return names
}

// decodeAll splits a multi-document YAML stream into objects.
func decodeAll(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// template runs `helm template` with the given flags.
func (h helmCLI) template(t *testing.T, flags ...string) (rendered, error) {
	t.Helper()
	args := append([]string{"template", release, chartDir(t), "--namespace", namespace, "--kube-version", kubeVersion}, flags...)
	out, err := h.run(args...)
	if err != nil {
		return nil, err
	}
	objs, err := decodeAll([]byte(out))
	if err != nil {
		t.Fatalf("parse helm template output: %v\n%s", err, out)
	}
	r := rendered{}
	for _, u := range objs {
		key := u.GetKind() + "/" + u.GetName()
		if _, dup := r[key]; dup {
			t.Fatalf("%s rendered twice", key)
		}
		r[key] = u
	}
	return r, nil
}

func TestLint(t *testing.T) {
	h := newHelm(t)
	for _, tc := range []struct {
		name   string
		values []string
	}{
		{"data center only", []string{"--set", "dataCenter=fra1"}},
		{"local environment", localEnvValues},
		{"one operator, no PriorityClasses", []string{"--set", "dataCenter=fra1", "--set", "operators.controlplane.enabled=false",
			"--set", "operators.register.enabled=false", "--set", "priorityClasses.create=false", "--set", "priorityClassName="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := h.run(append([]string{"lint", "--strict", "--kube-version", kubeVersion, chartDir(t)}, tc.values...)...); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestRejectsBadValues: a wrong value fails before anything is installed,
// with a message that names the value a person has to fix.
func TestRejectsBadValues(t *testing.T) {
	h := newHelm(t)
	for _, tc := range []struct {
		name   string
		values []string
		// wantErr are substrings of helm's output.
		wantErr []string
	}{
		{"no data center", nil, []string{"dataCenter"}},
		{"data center not a DNS label", []string{"--set", "dataCenter=DC_1"}, []string{"dataCenter", "DC_1"}},
		{"data center too long", []string{"--set", "dataCenter=" + strings.Repeat("a", 64)}, []string{"dataCenter"}},
		{"negative replicas", []string{"--set", "dataCenter=dc1", "--set", "operators.sync.replicas=-1"}, []string{"operators/sync/replicas"}},
		{"unknown pull policy", []string{"--set", "dataCenter=dc1", "--set", "image.pullPolicy=Sometimes"}, []string{"image/pullPolicy", "Sometimes"}},
		{"misspelt operator", []string{"--set", "dataCenter=dc1", "--set", "operators.synk.replicas=2"}, []string{"synk"}},
		{"extra arg without dashes", []string{"--set", "dataCenter=dc1", "--set", "operators.register.extraArgs={verbose}"}, []string{"operators/register/extraArgs"}},
		{"URL host pattern with a comma", []string{"--set", "dataCenter=dc1", "--set-json", `operators.controlplane.allowedURLHosts=["a.example.com,b.example.com"]`}, []string{"operators/controlplane/allowedURLHosts/0"}},
		{"priority above user range", []string{"--set", "dataCenter=dc1", "--set", "priorityClasses.classes[0].value=2000000000"}, []string{"priorityClasses/classes/0/value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.template(t, tc.values...)
			if err == nil {
				t.Fatalf("helm template %v succeeded; want an error naming %q", tc.values, tc.wantErr)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not name %q:\n%v", want, err)
				}
			}
		})
	}
}

// TestRendersOperators checks what the operators run with: the images, the
// flags internal/operator parses, probes, hardening and priority.
func TestRendersOperators(t *testing.T) {
	h := newHelm(t)
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	data, err := os.ReadFile(filepath.Join(chartDir(t), "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &chart); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		values   []string
		image    string // %s is the operator
		pull     corev1.PullPolicy
		replicas map[string]int32
		disabled []string
		peers    []string
		extra    map[string][]string
	}{
		{
			name:   "local environment",
			values: localEnvValues,
			image:  "marina.local/marina-%s:dev",
			pull:   corev1.PullNever,
		},
		{
			name:   "defaults",
			values: []string{"--set", "dataCenter=dc1"},
			image:  "ghcr.io/marina-platform/marina-%s:" + chart.AppVersion,
			pull:   corev1.PullIfNotPresent,
		},
		{
			name: "per-operator settings",
			values: []string{"--set", "dataCenter=dc1", "--set", "operators.sync.enabled=true", "--set", "operators.sync.replicas=3", "--set", "operators.register.enabled=false",
				"--set", "operators.controlplane.extraArgs={--zap-devel=true}", "--set", "image.registry=registry.fra1.example.com:5000/mirror/",
				"--set", "operators.controlplane.allowedURLHosts={mirror.fra1.example.com,10.0.0.0/8}", "--set", "operators.controlplane.vaultPlainHTTPHosts={10.0.0.2}",
				"--set", "peers.dataCenters={dc2,dc3}"},
			image:    "registry.fra1.example.com:5000/mirror/marina-%s:" + chart.AppVersion,
			pull:     corev1.PullIfNotPresent,
			replicas: map[string]int32{"sync": 3},
			disabled: []string{"register"},
			peers:    []string{"dc2", "dc3"},
			extra:    map[string][]string{"controlplane": {"--zap-devel=true", "--allowed-url-hosts=mirror.fra1.example.com,10.0.0.0/8", "--vault-plain-http-hosts=10.0.0.2"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := h.template(t, tc.values...)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, op := range operators {
				if !slices.Contains(tc.disabled, op) {
					want = append(want, "marina-"+op)
				}
			}
			if got := r.ofKind("Deployment"); !slices.Equal(got, want) {
				t.Errorf("Deployments %v, want %v", got, want)
			}
			for _, kind := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding"} {
				got := slices.DeleteFunc(r.ofKind(kind), func(n string) bool { return n == "marina-metrics-reader" })
				w := slices.Clone(want)
				if kind == "ServiceAccount" {
					for _, p := range tc.peers {
						w = append(w, "marina-peer-"+p)
					}
				} else if len(tc.peers) > 0 {
					w = append(w, "marina-peer-replicator")
				}
				slices.Sort(got)
				slices.Sort(w)
				if !slices.Equal(got, w) {
					t.Errorf("%ss %v, want %v", kind, got, w)
				}
			}
			// Metrics are served over HTTPS to whoever may GET /metrics:
			// the chart's reader role is what a scraper is bound to.
			var reader rbacv1.ClusterRole
			r.get(t, "ClusterRole", "marina-metrics-reader", &reader)
			if want := []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}; !equality.Semantic.DeepEqual(reader.Rules, want) {
				t.Errorf("ClusterRole marina-metrics-reader rules %+v, want %+v", reader.Rules, want)
			}
			for _, op := range operators {
				if slices.Contains(tc.disabled, op) {
					continue
				}
				name := "marina-" + op
				for _, key := range []string{"Service/" + name + "-metrics", "Role/" + name + "-leader-election", "RoleBinding/" + name + "-leader-election"} {
					if r[key] == nil {
						t.Errorf("%s not rendered", key)
					}
				}
				var d appsv1.Deployment
				r.get(t, "Deployment", name, &d)
				replicas := int32(1)
				if n, ok := tc.replicas[op]; ok {
					replicas = n
				}
				checkDeployment(t, &d, fmt.Sprintf(tc.image, op), tc.pull, replicas, tc.extra[op])

				var binding rbacv1.ClusterRoleBinding
				r.get(t, "ClusterRoleBinding", name, &binding)
				if binding.RoleRef.Name != name || len(binding.Subjects) != 1 || binding.Subjects[0].Name != name || binding.Subjects[0].Namespace != namespace {
					t.Errorf("ClusterRoleBinding %s binds %v to %v; want ClusterRole %s to ServiceAccount %s/%s", name, binding.RoleRef, binding.Subjects, name, namespace, name)
				}
			}
			checkPriorityClasses(t, r)
		})
	}
}

func checkDeployment(t *testing.T, d *appsv1.Deployment, image string, pull corev1.PullPolicy, replicas int32, extra []string) {
	t.Helper()
	name := d.Name
	if d.Namespace != namespace {
		t.Errorf("%s in namespace %q, want %q", name, d.Namespace, namespace)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != replicas {
		t.Errorf("%s replicas %v, want %d", name, d.Spec.Replicas, replicas)
	}
	pod := d.Spec.Template.Spec
	if pod.ServiceAccountName != name {
		t.Errorf("%s runs as ServiceAccount %q, want %q", name, pod.ServiceAccountName, name)
	}
	if pod.PriorityClassName != "marina-operator" {
		t.Errorf("%s priorityClassName %q, want marina-operator", name, pod.PriorityClassName)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%s has %d containers, want 1", name, len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != image || c.ImagePullPolicy != pull {
		t.Errorf("%s image %s (%s), want %s (%s)", name, c.Image, c.ImagePullPolicy, image, pull)
	}

	// The args must be flags the operator accepts and mean what the chart
	// promises; parse them the way the binary does.
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var cpFlags controller.Flags
	if name == "marina-controlplane" {
		cpFlags.Bind(fs)
	}
	opts, err := operator.ParseOptions(name, fs, c.Args, func(string) string { return "" })
	if err != nil {
		t.Fatalf("%s args %q are rejected by the operator: %v", name, c.Args, err)
	}
	// The KMS plugin ships with the operators: same registry and tag.
	if want := strings.Replace(image, "/marina-controlplane:", "/kms-vault:", 1); name == "marina-controlplane" && cpFlags.KMSPluginImage != want {
		t.Errorf("%s runs KMS plugin image %q, want %q", name, cpFlags.KMSPluginImage, want)
	}
	if opts.DataCenter != "dc1" || !opts.LeaderElect || opts.LeaderElectionNamespace != namespace ||
		opts.MetricsBindAddress != ":8443" || !opts.MetricsSecure || opts.HealthProbeBindAddress != ":8081" {
		t.Errorf("%s args %q give %+v; want data center dc1, leader election in %s, secure metrics on :8443, probes :8081", name, c.Args, opts, namespace)
	}
	// The chart's lease timings are the operator's own defaults.
	if def := operator.DefaultOptions(name, func(string) string { return "" }); opts.LeaseDuration != def.LeaseDuration ||
		opts.RenewDeadline != def.RenewDeadline || opts.RetryPeriod != def.RetryPeriod {
		t.Errorf("%s leader election %s/%s/%s, want the operator's defaults %s/%s/%s", name,
			opts.LeaseDuration, opts.RenewDeadline, opts.RetryPeriod, def.LeaseDuration, def.RenewDeadline, def.RetryPeriod)
	}
	for _, arg := range extra {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("%s args %q lack the extra arg %q", name, c.Args, arg)
		}
	}

	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "health" {
			t.Errorf("%s %s probe %+v, want GET %s on port health", name, p.kind, p.probe, p.path)
		}
	}
	var healthPort int32
	for _, port := range c.Ports {
		if port.Name == "health" {
			healthPort = port.ContainerPort
		}
	}
	if healthPort != 8081 {
		t.Errorf("%s health port %d, want 8081 (the --health-probe-bind-address port)", name, healthPort)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s resources %+v: want a CPU request and a memory limit", name, c.Resources)
	}

	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s container securityContext %+v: want runAsNonRoot, readOnlyRootFilesystem, no privilege escalation, drop ALL, RuntimeDefault seccomp", name, sc)
	}
}

func checkPriorityClasses(t *testing.T, r rendered) {
	t.Helper()
	var names []string
	for name := range priorityClasses {
		names = append(names, name)
	}
	slices.Sort(names)
	if got := r.ofKind("PriorityClass"); !slices.Equal(got, names) {
		t.Errorf("PriorityClasses %v, want %v", got, names)
	}
	for name, value := range priorityClasses {
		var pc schedulingv1.PriorityClass
		r.get(t, "PriorityClass", name, &pc)
		if pc.Value != value || pc.GlobalDefault || pc.Description == "" {
			t.Errorf("PriorityClass %s: value %d, globalDefault %v, description %q; want value %d, not global default, a description",
				name, pc.Value, pc.GlobalDefault, pc.Description, value)
		}
	}
}

// generatedRBAC reads what controller-gen wrote from an operator's markers.
func generatedRBAC(t *testing.T, op string) (rbacv1.ClusterRole, rbacv1.Role) {
	t.Helper()
	path := filepath.Join(chartDir(t), "files", "rbac", op, "role.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `make generate`)", err)
	}
	objs, err := decodeAll(data)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var cr rbacv1.ClusterRole
	var role rbacv1.Role
	var clusterRoles, roles int
	for _, u := range objs {
		var into runtime.Object
		switch u.GetKind() {
		case "ClusterRole":
			into, clusterRoles = &cr, clusterRoles+1
		case "Role":
			into, roles = &role, roles+1
		default:
			t.Fatalf("%s: unexpected %s", path, u.GetKind())
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
			t.Fatal(err)
		}
	}
	if clusterRoles != 1 || roles != 1 {
		t.Fatalf("%s has %d ClusterRoles and %d Roles; want one of each (cluster-wide markers and the leader-election marker)", path, clusterRoles, roles)
	}
	return cr, role
}

// TestRBACIsGenerated: the chart grants exactly what the operators' RBAC
// markers declare, no more, no less.
func TestRBACIsGenerated(t *testing.T) {
	h := newHelm(t)
	r, err := h.template(t, append(slices.Clone(localEnvValues), allOperators...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range operators {
		t.Run(op, func(t *testing.T) {
			wantCR, wantRole := generatedRBAC(t, op)
			if len(wantCR.Rules) == 0 || len(wantRole.Rules) == 0 {
				t.Fatalf("generated RBAC of %s is empty", op)
			}
			name := "marina-" + op
			var cr rbacv1.ClusterRole
			r.get(t, "ClusterRole", name, &cr)
			if !equality.Semantic.DeepEqual(cr.Rules, wantCR.Rules) {
				t.Errorf("ClusterRole %s rules differ from the generated ones\n got: %+v\nwant: %+v", name, cr.Rules, wantCR.Rules)
			}
			var role rbacv1.Role
			r.get(t, "Role", name+"-leader-election", &role)
			if role.Namespace != namespace {
				t.Errorf("leader-election Role in %q, want the release namespace %q", role.Namespace, namespace)
			}
			if !equality.Semantic.DeepEqual(role.Rules, wantRole.Rules) {
				t.Errorf("Role %s-leader-election rules differ from the generated ones\n got: %+v\nwant: %+v", name, role.Rules, wantRole.Rules)
			}
		})
	}
}

// startAPIServer starts kube-apiserver and etcd for one test, stopped at its
// end, and writes an administrator's kubeconfig for helm and kubectl.
func startAPIServer(t *testing.T) (*testenv.Env, string) {
	t.Helper()
	ctrllog.SetLogger(logr.Discard())
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop API server: %v", err)
		}
	})
	kubeconfig, err := env.KubeconfigFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return env, kubeconfig
}

// TestInstallUpgradeUninstall installs the chart with the local
// environment's values on a real API server, upgrades it and uninstalls it.
// No pods run (the API server has no nodes); what is checked is that every
// object is accepted and that helm manages them over the release's life.
func TestInstallUpgradeUninstall(t *testing.T) {
	h := newHelm(t)
	env, kubeconfig := startAPIServer(t)
	c := env.Client
	ctx := t.Context()

	helmArgs := func(verb string, extra ...string) []string {
		args := []string{verb, release, chartDir(t), "--kubeconfig", kubeconfig, "--namespace", namespace}
		return append(append(args, localEnvValues...), extra...)
	}
	if _, err := h.run(append(helmArgs("install"), "--create-namespace")...); err != nil {
		t.Fatal(err)
	}

	type object struct {
		obj       client.Object
		name, ns  string
		removable bool // helm uninstall removes it
	}
	kindOf := func(o client.Object) string {
		if u, ok := o.(*unstructured.Unstructured); ok {
			return u.GetKind()
		}
		return strings.TrimPrefix(fmt.Sprintf("%T", o), "*")
	}
	var objects []object
	for _, op := range operators {
		name := "marina-" + op
		objects = append(objects,
			object{&appsv1.Deployment{}, name, namespace, true},
			object{&corev1.ServiceAccount{}, name, namespace, true},
			object{&corev1.Service{}, name + "-metrics", namespace, true},
			object{&rbacv1.ClusterRole{}, name, "", true},
			object{&rbacv1.ClusterRoleBinding{}, name, "", true},
			object{&rbacv1.Role{}, name + "-leader-election", namespace, true},
			object{&rbacv1.RoleBinding{}, name + "-leader-election", namespace, true})
	}
	for name := range priorityClasses {
		objects = append(objects, object{&schedulingv1.PriorityClass{}, name, "", true})
	}
	objects = append(objects,
		object{&admissionregistrationv1.ValidatingAdmissionPolicy{}, "marina-controlplane-scope", "", true},
		object{&admissionregistrationv1.ValidatingAdmissionPolicyBinding{}, "marina-controlplane-scope", "", true},
		object{&admissionregistrationv1.ValidatingAdmissionPolicy{}, "marina-replicas", "", true},
		object{&admissionregistrationv1.ValidatingAdmissionPolicyBinding{}, "marina-replicas", "", true})
	// Only with peers.dataCenters, which the upgrade sets.
	peering := []object{
		{&corev1.ServiceAccount{}, "marina-peer-dc2", namespace, true},
		{&rbacv1.ClusterRole{}, "marina-peer-replicator", "", true},
		{&rbacv1.ClusterRoleBinding{}, "marina-peer-replicator", "", true},
	}
	for _, crd := range []string{"controlplanes", "memberclusters", "registrationpolicies", "policysets", "peers"} {
		// Unstructured: the test client's scheme has no apiextensions kinds.
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("apiextensions.k8s.io/v1")
		u.SetKind("CustomResourceDefinition")
		objects = append(objects, object{u, crd + ".marina.dev", "", false})
	}
	for _, o := range objects {
		if err := c.Get(ctx, client.ObjectKey{Namespace: o.ns, Name: o.name}, o.obj); err != nil {
			t.Errorf("after helm install: %s %s: %v", kindOf(o.obj), o.name, err)
		}
	}
	var d appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "marina-register"}, &d); err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "marina.local/marina-register:dev" {
		t.Errorf("installed image %s, want marina.local/marina-register:dev", img)
	}
	for _, o := range peering {
		if err := c.Get(ctx, client.ObjectKey{Namespace: o.ns, Name: o.name}, o.obj); !apierrors.IsNotFound(err) {
			t.Errorf("after helm install: %s %s installed (err %v); peering is off until peers.dataCenters lists a data center", kindOf(o.obj), o.name, err)
		}
	}

	// The upgrade adds a peer; uninstall must then remove its objects too.
	if _, err := h.run(helmArgs("upgrade", "--set", "peers.dataCenters={dc2}", "--set", "operators.sync.replicas=2", "--set", "operators.register.replicas=0")...); err != nil {
		t.Fatal(err)
	}
	objects = append(objects, peering...)
	for _, o := range objects {
		if err := c.Get(ctx, client.ObjectKey{Namespace: o.ns, Name: o.name}, o.obj); err != nil {
			t.Errorf("after helm upgrade: %s %s: %v", kindOf(o.obj), o.name, err)
		}
	}
	for op, want := range map[string]int32{"controlplane": 1, "register": 0, "sync": 2} {
		var d appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "marina-" + op}, &d); err != nil {
			t.Fatalf("after helm upgrade: %v", err)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != want {
			t.Errorf("after helm upgrade: marina-%s replicas %v, want %d", op, d.Spec.Replicas, want)
		}
	}

	if _, err := h.run("uninstall", release, "--kubeconfig", kubeconfig, "--namespace", namespace, "--wait", "--timeout", "1m"); err != nil {
		t.Fatal(err)
	}
	for _, o := range objects {
		err := c.Get(ctx, client.ObjectKey{Namespace: o.ns, Name: o.name}, o.obj)
		switch {
		case o.removable && !apierrors.IsNotFound(err):
			t.Errorf("after helm uninstall: %s %s still there (err %v)", kindOf(o.obj), o.name, err)
		case !o.removable && err != nil:
			t.Errorf("after helm uninstall: %s %s: %v; helm must leave CRDs (and so every Marina object) alone", kindOf(o.obj), o.name, err)
		}
	}
}
