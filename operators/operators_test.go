// Package operators_test runs each operator binary, built from source, as a
// process against a real API server and checks what a cluster administrator
// relies on: probes, metrics, leader election and a clean SIGTERM.
package operators_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/marina-platform/marina/internal/localenv/certmanager"
	"github.com/marina-platform/marina/internal/testenv"
)

// testVersion is stamped into the binaries to show -ldflags reaches
// marina_build_info.
const testVersion = "v0.0.0-operators-test"

// Bounds on every wait. Generous because the API server, etcd and three
// operators share a small machine; a healthy run takes a fraction of them.
const (
	startTimeout    = 60 * time.Second
	gracefulTimeout = 10 * time.Second
	// exitTimeout leaves room beyond the graceful timeout for releasing the
	// Lease and process teardown.
	exitTimeout = gracefulTimeout + 15*time.Second
)

var operators = []struct {
	name string // as passed to operator.Main
	pkg  string // folder under operators/
}{
	{name: "marina-controlplane", pkg: "controlplane"},
	{name: "marina-register", pkg: "register"},
	{name: "marina-sync", pkg: "sync"},
}

var (
	env        *testenv.Env
	kubeconfig string
	// binaries maps an operator's package folder to its built binary.
	binaries = map[string]string{}
	// metricsReader and nobody are ServiceAccount tokens: the first may
	// read metrics, the second has no rights.
	metricsReader, nobody string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// envtest and the client log through controller-runtime; their failures
	// come back as errors, so their logs would only be noise.
	ctrllog.SetLogger(logr.Discard())

	dir, err := os.MkdirTemp("", "marina-operators-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)

	// Build before starting the API server so a compile error fails fast.
	if err := buildOperators(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop test API server: %v\n", err)
		}
	}()
	// marina-controlplane watches cert-manager's kinds: a cluster it runs
	// in has cert-manager, as the chart's README says.
	root, err := testenv.RepoRoot()
	if err == nil {
		var files []string
		if files, err = certmanager.CRDs(context.Background(), root); err == nil {
			err = env.InstallCRDs(files)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kubeconfig, err = env.KubeconfigFile(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if metricsReader, nobody, err = serviceAccountTokens(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// buildOperators builds every operator into dir with one go build, which
// shares the compile work between them.
func buildOperators(dir string) error {
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	args := []string{"build", "-o", dir + string(filepath.Separator),
		"-ldflags", "-X github.com/marina-platform/marina/internal/version.Version=" + testVersion}
	for _, op := range operators {
		args = append(args, "./operators/"+op.pkg)
		binaries[op.pkg] = filepath.Join(dir, op.pkg)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func TestOperatorLifecycle(t *testing.T) {
	for _, op := range operators {
		t.Run(op.name, func(t *testing.T) {
			ctx := t.Context()
			namespace := op.pkg + "-leader-election"
			if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
				t.Fatalf("create namespace %s: %v", namespace, err)
			}
			metricsAddr, probeAddr := freeAddr(t), freeAddr(t)

			p := startOperator(t, binaries[op.pkg],
				"--kubeconfig="+kubeconfig,
				"--data-center=dc1",
				"--leader-election-namespace="+namespace,
				"--metrics-bind-address="+metricsAddr,
				"--health-probe-bind-address="+probeAddr,
				"--graceful-shutdown-timeout="+gracefulTimeout.String(),
			)

			for _, path := range []string{"/healthz", "/readyz"} {
				url := "http://" + probeAddr + path
				p.eventually(t, startTimeout, "GET "+url+" returns 200", func() error {
					_, err := get(url)
					return err
				})
			}

			metricsURL := "https://" + metricsAddr + "/metrics"
			var buildInfo string
			p.eventually(t, startTimeout, "GET "+metricsURL+" has marina_build_info", func() error {
				body, err := getMetrics(metricsURL, metricsReader)
				if err != nil {
					return err
				}
				buildInfo = metricLine(body, "marina_build_info")
				if buildInfo == "" {
					return errors.New("no marina_build_info")
				}
				return nil
			})
			for _, want := range []string{
				`operator="` + op.name + `"`, `data_center="dc1"`, `version="` + testVersion + `"`,
			} {
				if !strings.Contains(buildInfo, want) {
					t.Errorf("%s has no %s", buildInfo, want)
				}
			}
			if !strings.HasSuffix(buildInfo, " 1") {
				t.Errorf("%s: want value 1", buildInfo)
			}
			// Metrics are for those the API server lets read them.
			for _, tc := range []struct {
				who, token string
				want       int
			}{
				{"no token", "", http.StatusUnauthorized},
				// controller-runtime's filter answers a token the API
				// server rejects as an authentication error.
				{"a token the API server does not know", "not-a-token", http.StatusInternalServerError},
				{"a ServiceAccount without GET /metrics", nobody, http.StatusForbidden},
			} {
				if _, err := getMetrics(metricsURL, tc.token); err == nil || !strings.Contains(err.Error(), "status "+strconv.Itoa(tc.want)) {
					t.Errorf("GET %s with %s: %v; want status %d", metricsURL, tc.who, err, tc.want)
				}
			}

			leaseKey := client.ObjectKey{Namespace: namespace, Name: op.name + ".marina.dev"}
			var lease coordinationv1.Lease
			p.eventually(t, startTimeout, fmt.Sprintf("Lease %s has a holder", leaseKey), func() error {
				if err := env.Client.Get(ctx, leaseKey, &lease); err != nil {
					return err
				}
				if holder(&lease) == "" {
					return errors.New("no holderIdentity")
				}
				return nil
			})
			if got := lease.Labels["app.kubernetes.io/name"]; got != op.name {
				t.Errorf("Lease %s label app.kubernetes.io/name = %q, want %q", leaseKey, got, op.name)
			}

			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatalf("send SIGTERM to %s (pid %d): %v", op.name, p.cmd.Process.Pid, err)
			}
			code := p.waitExit(t, exitTimeout)
			if code != 0 {
				t.Errorf("%s exited with code %d after SIGTERM, want 0", op.name, code)
			}

			// ReleaseOnCancel: the next replica must not wait out the lease.
			if err := env.Client.Get(ctx, leaseKey, &lease); err != nil {
				t.Fatalf("get Lease %s after shutdown: %v", leaseKey, err)
			}
			if h := holder(&lease); h != "" {
				t.Errorf("Lease %s still held by %q after a clean shutdown, want released", leaseKey, h)
			}
		})
	}
}

func TestOperatorRequiresDataCenter(t *testing.T) {
	for _, op := range operators {
		t.Run(op.name, func(t *testing.T) {
			// startOperator clears MARINA_DATA_CENTER, so no data center is
			// given; "0" keeps the servers off should it start anyway.
			p := startOperator(t, binaries[op.pkg],
				"--kubeconfig="+kubeconfig,
				"--metrics-bind-address=0",
				"--health-probe-bind-address=0",
			)
			if code := p.waitExit(t, startTimeout); code == 0 {
				t.Errorf("%s without a data center exited with code 0, want non-zero", op.name)
			}
			out := p.output(t)
			if !strings.Contains(out, "--data-center") {
				t.Errorf("%s output does not name --data-center:\n%s", op.name, out)
			}
			if lines := strings.Count(strings.TrimSpace(out), "\n") + 1; lines != 1 {
				t.Errorf("%s printed %d lines, want a one-line message:\n%s", op.name, lines, out)
			}
		})
	}
}

// process is an operator binary started by a test.
type process struct {
	cmd     *exec.Cmd
	logPath string
	// done is closed once the process has exited and cmd.ProcessState is set.
	done chan struct{}
}

// startOperator starts bin with args and an environment that holds none of
// the operator's environment defaults, so only args configure it. The
// process is killed, by its PID, if a test ends while it still runs.
func startOperator(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "operator.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = logFile.Close() })

	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "KUBECONFIG", "MARINA_DATA_CENTER", "POD_NAMESPACE":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &process{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // the exit status is read from cmd.ProcessState
		close(p.done)
	}()

	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Errorf("pid %d did not exit after SIGKILL", cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(bin), p.output(t))
		}
	})
	return p
}

// eventually polls check until it returns nil, failing the test when timeout
// passes or the process exits first.
func (p *process) eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s: process exited with code %d before that (last check: %v)", what, p.cmd.ProcessState.ExitCode(), err)
		case <-deadline:
			t.Fatalf("%s: not within %s (last check: %v)", what, timeout, err)
		case <-tick.C:
		}
	}
}

// waitExit waits for the process to exit and returns its exit code.
func (p *process) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("pid %d did not exit within %s", p.cmd.Process.Pid, timeout)
		return -1
	}
}

func (p *process) output(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Errorf("read process output: %v", err)
	}
	return string(data)
}

// freeAddr returns a loopback address with a port that was free a moment
// ago. Only 127.0.0.1: the test must not open ports to the network.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// metricsClient reaches the operators' metrics servers, whose certificate
// is self-signed by default; what is checked is that only callers the API
// server authorizes get metrics, not the certificate.
var metricsClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed, see above
}}

// getMetrics is GET url on a metrics server with token as its bearer token
// (none if empty).
func getMetrics(url, token string) (string, error) { return fetch(metricsClient, url, token) }

// fetch is GET url with c, and token as the bearer token unless empty; a
// status other than 200 is an error with the start of the body.
func fetch(c *http.Client, url, token string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s: %.200s", resp.Status, body)
	}
	return string(body), nil
}

// serviceAccountTokens makes two ServiceAccounts, one bound to a role that
// may GET /metrics (the rule of the chart's metrics-reader) and one with no
// rights, and returns a token of each.
func serviceAccountTokens(ctx context.Context) (reader, nobody string, err error) {
	const ns = "metrics-readers"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return "", "", err
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "reader"}},
	}
	for _, o := range []client.Object{role, binding,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reader"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nobody"}},
	} {
		if err := env.Client.Create(ctx, o); err != nil {
			return "", "", err
		}
	}
	token := func(name string) (string, error) {
		tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if err := env.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
			return "", fmt.Errorf("token of %s/%s: %w", ns, name, err)
		}
		return tr.Status.Token, nil
	}
	if reader, err = token("reader"); err != nil {
		return "", "", err
	}
	nobody, err = token("nobody")
	return reader, nobody, err
}

// get returns the body of url, or an error unless the status is 200.
func get(url string) (string, error) { return fetch(httpClient, url, "") }

// metricLine returns the first sample of metric in a Prometheus text
// exposition, or "" when there is none.
func metricLine(exposition, metric string) string {
	s := bufio.NewScanner(strings.NewReader(exposition))
	for s.Scan() {
		if line := s.Text(); strings.HasPrefix(line, metric+"{") || strings.HasPrefix(line, metric+" ") {
			return line
		}
	}
	return ""
}

func holder(lease *coordinationv1.Lease) string {
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}
