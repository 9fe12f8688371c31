package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/testenv"
)

// BenchmarkScale runs the operator's binary against a management cluster
// with many members, as the register issue asks: members arrive at once and
// one at a time with many joined already, and the operator's memory and its
// writes to the management cluster are measured while they stay healthy.
//
// A MemberCluster is unique per control plane (one kube-system UID, one
// Cluster), so the members are spread over pairs of real API servers:
// MARINA_BENCH_MEMBER_SERVERS members × MARINA_BENCH_CONTROL_PLANES control
// planes, each member with kube-controller-manager's token controller, each
// API server with a lower GOGC to fit the machine's memory. An idle API
// server with its etcd costs about 2 % of a core, so a 2-core machine runs
// some 40 of them, not the 64 that 1000 distinct pairs need: the defaults
// (20 × 20, 300 at once then 100 one by one) are what fits here; raise them
// on a larger machine. Run it with -benchtime 1x: one pass takes minutes,
// plus the steady-state window.
//
// Knobs (environment): MARINA_BENCH_MEMBERS (300) joined at once,
// MARINA_BENCH_ARRIVALS (100) joined one by one after them,
// MARINA_BENCH_STEADY (31m, a whole --status-interval) the window in which
// writes are counted.
func BenchmarkScale(b *testing.B) {
	ctrllog.SetLogger(logr.Discard())
	members, arrivals := envInt(b, "MARINA_BENCH_MEMBERS", 300), envInt(b, "MARINA_BENCH_ARRIVALS", 100)
	steady := envDuration(b, "MARINA_BENCH_STEADY", 31*time.Minute)
	memberServers, controlPlanes := envInt(b, "MARINA_BENCH_MEMBER_SERVERS", 20), envInt(b, "MARINA_BENCH_CONTROL_PLANES", 20)
	if memberServers*controlPlanes < members+arrivals {
		b.Fatalf("%d member servers × %d control planes give %d distinct pairs, fewer than the %d members", memberServers, controlPlanes, memberServers*controlPlanes, members+arrivals)
	}
	ctx := context.Background()
	dir := b.TempDir()
	// The API servers collect garbage more often, to fit ~70 of them in
	// the machine's memory; the operator runs with Go's default.
	b.Setenv("GOGC", "25")

	mgmt, err := testenv.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = mgmt.Stop() })
	mgmtClient := fastClient(b, mgmt)

	start := time.Now()
	memberKubeconfigs := make([][]byte, memberServers)
	cpKubeconfigs := make([][]byte, controlPlanes)
	root, err := testenv.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	standIn := filepath.Join(root, "operators", "controlplane", "component", "crds", "standin-cluster.yaml")
	parallel(b, memberServers+controlPlanes, 4, func(i int) error {
		env, err := testenv.StartWith(testenv.Options{WithoutMarinaCRDs: true})
		if err != nil {
			return err
		}
		b.Cleanup(func() { _ = env.Stop() })
		d := filepath.Join(dir, fmt.Sprint(i))
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
		path, err := env.KubeconfigFile(d)
		if err != nil {
			return err
		}
		kubeconfig, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if i < memberServers {
			stop, err := env.StartControllerManager(d, "serviceaccount-token")
			if err != nil {
				return err
			}
			b.Cleanup(func() { _ = stop() })
			memberKubeconfigs[i] = kubeconfig
			return nil
		}
		if err := env.InstallCRDs([]string{standIn}); err != nil {
			return err
		}
		_, cpKubeconfigs[i-memberServers], err = env.RegistrationUser(context.Background())
		return err
	})
	b.Logf("%d member and %d control plane API servers up in %s; the machine has %d MiB available",
		memberServers, controlPlanes, time.Since(start).Round(time.Second), memAvailable(b)>>20)

	const ns = "bench"
	for _, name := range []string{ns, "marina-system"} {
		if err := mgmtClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
			b.Fatal(err)
		}
	}
	for i, kubeconfig := range cpKubeconfigs {
		readyControlPlane(b, mgmtClient, ns, fmt.Sprintf("cp-%d", i), kubeconfig)
	}
	// Member i is the pair (member server i mod M, control plane i div M):
	// every pair at most once.
	mc := func(i int) *marinav1alpha1.MemberCluster {
		return &marinav1alpha1.MemberCluster{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("m-%d", i)},
			Spec: marinav1alpha1.MemberClusterSpec{
				KubeconfigSecretRef: &marinav1alpha1.SecretKeyReference{Name: fmt.Sprintf("m-%d-kubeconfig", i), Key: "kubeconfig"},
				ControlPlanes:       []marinav1alpha1.ControlPlaneReference{{Name: fmt.Sprintf("cp-%d", i/memberServers)}},
			},
		}
	}
	parallel(b, members+arrivals, 16, func(i int) error {
		return mgmtClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("m-%d-kubeconfig", i)},
			Data:       map[string][]byte{"kubeconfig": memberKubeconfigs[i%memberServers]},
		})
	})

	op := startOperator(b, mgmt, dir)

	// 1. All members at once.
	joined := watchJoined(b, mgmt)
	wBurst, cpuBurst, busyBurst := op.writes(b), op.cpu(b), machineBusy(b)
	start = time.Now()
	parallel(b, members, 16, func(i int) error { return mgmtClient.Create(ctx, mc(i)) })
	created := time.Since(start)
	if err := joined.waitCount(members, 10*time.Minute); err != nil {
		b.Fatal(err)
	}
	burst := time.Since(start)
	b.Logf("%d MemberClusters created in %s, all Joined after %s; the operator used %s of CPU (the machine %s, API servers included) and wrote %.1f times to the management cluster per member",
		members, created.Round(time.Millisecond), burst.Round(time.Millisecond), (op.cpu(b) - cpuBurst).Round(10*time.Millisecond),
		(machineBusy(b) - busyBurst).Round(10*time.Millisecond),
		float64(op.writes(b)-wBurst)/float64(members))

	// 2. One at a time, with the others joined.
	var latencies []time.Duration
	for i := members; i < members+arrivals; i++ {
		start := time.Now()
		if err := mgmtClient.Create(ctx, mc(i)); err != nil {
			b.Fatal(err)
		}
		if err := joined.waitCount(i+1, time.Minute); err != nil {
			b.Fatal(err)
		}
		latencies = append(latencies, joined.at(fmt.Sprintf("m-%d", i)).Sub(start))
	}
	slices.Sort(latencies)
	p50, p99 := latencies[len(latencies)/2], latencies[len(latencies)*99/100]
	b.Logf("one arrival with %d joined: p50 %s, p99 %s", members, p50.Round(time.Millisecond), p99.Round(time.Millisecond))

	// 3. Steady state: the recheck after each join is over (a minute), then
	// writes to the management cluster are counted in a window.
	time.Sleep(70 * time.Second)
	w0 := op.writes(b)
	time.Sleep(steady)
	w1 := op.writes(b)
	rss, hwm := op.memory(b)
	writesPerSecond := float64(w1-w0) / steady.Seconds()
	b.Logf("steady state with %d members over %s: %d writes to the management cluster (%.2f/s); operator RSS %d MiB, peak %d MiB",
		members+arrivals, steady, w1-w0, writesPerSecond, rss>>20, hwm>>20)

	b.ReportMetric(burst.Seconds(), "all-joined-s")
	b.ReportMetric(float64(p50.Microseconds())/1000, "arrival-p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "arrival-p99-ms")
	b.ReportMetric(float64(rss>>20), "rss-MiB")
	b.ReportMetric(float64(hwm>>20), "peak-rss-MiB")
	b.ReportMetric(writesPerSecond, "mgmt-writes/s")
}

// readyControlPlane makes a ControlPlane whose status says it serves, with
// the register operator's kubeconfig of a control plane API server: the controlplane
// operator's part, which does not run here.
func readyControlPlane(b *testing.B, c client.Client, ns, name string, kubeconfig []byte) {
	ctx := context.Background()
	cp := testenv.ControlPlane(ns, name, "dc1")
	if err := c.Create(ctx, cp); err != nil {
		b.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-registration-kubeconfig"},
		Data:       map[string][]byte{"kubeconfig": kubeconfig},
	}); err != nil {
		b.Fatal(err)
	}
	cp.Status.RegistrationKubeconfigSecretRef = &marinav1alpha1.SecretKeyReference{Name: name + "-registration-kubeconfig", Key: "kubeconfig"}
	meta.SetStatusCondition(&cp.Status.Conditions, metav1.Condition{Type: marinav1alpha1.ConditionAPIServerReady, Status: metav1.ConditionTrue, Reason: "Succeeded"})
	meta.SetStatusCondition(&cp.Status.Conditions, metav1.Condition{Type: marinav1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Succeeded"})
	if err := c.Status().Update(ctx, cp); err != nil {
		b.Fatal(err)
	}
}

// operatorProcess is the operator's binary running against the management
// cluster.
type operatorProcess struct {
	cmd     *exec.Cmd
	metrics string
	// mgmtHost is the host label of the management cluster in client-go's
	// request metrics.
	mgmtHost string
}

func startOperator(b *testing.B, mgmt *testenv.Env, dir string) *operatorProcess {
	bin := filepath.Join(dir, "marina-register")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build the operator: %v\n%s", err, out)
	}
	kubeconfig, err := mgmt.KubeconfigFile(dir)
	if err != nil {
		b.Fatal(err)
	}
	addr := freeAddr(b)
	log, err := os.Create(filepath.Join(dir, "operator.log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "--kubeconfig="+kubeconfig, "--data-center=dc1",
		// Plain HTTP: the benchmark reads the operator's request counts;
		// the secure path is tested in operators/operators_test.go.
		"--metrics-bind-address="+addr, "--metrics-secure=false", "--health-probe-bind-address=0",
		"--leader-election-namespace=marina-system")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOGC=") })
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = log.Close()
		if b.Failed() {
			out, _ := os.ReadFile(log.Name())
			b.Logf("operator log:\n%s", tail(string(out), 40))
		}
	})
	u, err := hostOf(mgmt.Config)
	if err != nil {
		b.Fatal(err)
	}
	o := &operatorProcess{cmd: cmd, metrics: "http://" + addr + "/metrics", mgmtHost: u}
	// Serving metrics comes a moment after the start.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(o.metrics)
		if err == nil {
			_ = resp.Body.Close()
			return o
		}
		if time.Now().After(deadline) {
			b.Fatalf("the operator serves no metrics at %s: %v", o.metrics, err)
		}
	}
}

// writes is the operator's count of create, update, patch and delete
// requests to the management cluster so far, from client-go's own metric.
func (o *operatorProcess) writes(b *testing.B) int64 {
	resp, err := http.Get(o.metrics)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var n int64
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, "rest_client_requests_total{") || !strings.Contains(line, `host="`+o.mgmtHost+`"`) {
			continue
		}
		write := false
		for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
			write = write || strings.Contains(line, `method="`+m+`"`)
		}
		if !write {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			b.Fatalf("metric line %q: %v", line, err)
		}
		n += int64(v)
	}
	if err := s.Err(); err != nil {
		b.Fatal(err)
	}
	return n
}

// memory is the operator's resident set size now and at its peak, in bytes.
func (o *operatorProcess) memory(b *testing.B) (rss, peak int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", o.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kib, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kib << 10
		case "VmHWM:":
			peak = kib << 10
		}
	}
	return rss, peak
}

// cpu is the CPU time the operator used so far, user and system.
func (o *operatorProcess) cpu(b *testing.B) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", o.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command's closing parenthesis; utime and stime are
	// the 14th and 15th of the line, in clock ticks of 1/100 s on Linux.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// memAvailable is the machine's MemAvailable, in bytes.
func memAvailable(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemAvailable:" {
			kib, _ := strconv.ParseInt(f[1], 10, 64)
			return kib << 10
		}
	}
	return 0
}

// machineBusy is the CPU time the whole machine spent busy so far, from
// /proc/stat: the API servers, etcd and token controllers share the
// machine with the operator.
func machineBusy(b *testing.B) time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(strings.SplitN(string(data), "\n", 2)[0])
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		// idle and iowait are the 4th and 5th.
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

// joinedWatch records when each MemberCluster was first seen joined to
// every control plane it names.
type joinedWatch struct {
	mu     sync.Mutex
	joined map[string]time.Time
}

func watchJoined(b *testing.B, mgmt *testenv.Env) *joinedWatch {
	wc, err := client.NewWithWatch(mgmt.Config, client.Options{Scheme: mgmt.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	w, err := wc.Watch(ctx, &marinav1alpha1.MemberClusterList{}, client.InNamespace("bench"))
	if err != nil {
		b.Fatal(err)
	}
	j := &joinedWatch{joined: map[string]time.Time{}}
	go func() {
		for ev := range w.ResultChan() {
			mc, ok := ev.Object.(*marinav1alpha1.MemberCluster)
			if !ok || int(mc.Status.JoinedControlPlanes) < len(mc.Spec.ControlPlanes) {
				continue
			}
			j.mu.Lock()
			if _, seen := j.joined[mc.Name]; !seen {
				j.joined[mc.Name] = time.Now()
			}
			j.mu.Unlock()
		}
	}()
	return j
}

func (j *joinedWatch) waitCount(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		j.mu.Lock()
		got := len(j.joined)
		j.mu.Unlock()
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d MemberClusters joined after %s", got, n, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (j *joinedWatch) at(name string) time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.joined[name]
}

// parallel runs f for 0..n-1 on workers goroutines and fails b on the
// first error.
func parallel(b *testing.B, n, workers int, f func(i int) error) {
	next := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					errs <- fmt.Errorf("%d: %w", i, err)
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// fastClient is a client for setting things up as fast as the API server
// takes them.
func fastClient(b *testing.B, e *testenv.Env) client.Client {
	cfg := rest.CopyConfig(e.Config)
	cfg.QPS, cfg.Burst = 500, 1000
	c, err := client.New(cfg, client.Options{Scheme: e.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// hostOf is the host:port of the API server at cfg, as client-go's
// request metrics name it.
func hostOf(cfg *rest.Config) (string, error) {
	u, err := neturl.Parse(cfg.Host)
	if err != nil || u.Port() == "" {
		return "", fmt.Errorf("API server address %q has no port: %v", cfg.Host, err)
	}
	return u.Host, nil
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q is not a positive number", name, v)
	}
	return n
}

func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("%s=%q is not a positive duration", name, v)
	}
	return d
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
