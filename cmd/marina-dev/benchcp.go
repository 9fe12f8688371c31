package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/localenv"
)

// cpBench holds the control plane figures of the report.
type cpBench struct {
	single     []time.Duration    // create → Ready, one at a time
	concurrent time.Duration      // create 5 → all Ready
	each       []time.Duration    // each of the 5
	base, with operatorMetrics    // the operator with no control plane, and with 5
	steady     map[string]float64 // requests per minute by host kind and verb
	reconciles float64            // ControlPlane reconciles in that minute
	n          int
}

// benchControlPlanes measures the controlplane operator in the first data
// center: create → Ready of one control plane (three runs, for a median),
// then of five at once, the operator's memory per control plane and its API
// requests per minute once they are all Ready.
func benchControlPlanes(ctx context.Context, env *localenv.Env) (*cpBench, error) {
	dc := env.DataCenters()[0]
	c, err := mgmtClient(dc)
	if err != nil {
		return nil, err
	}
	const ns = "marina-bench"
	cleanup, err := benchNamespace(ctx, env, c, ns)
	defer cleanup()
	if err != nil {
		return nil, err
	}
	metrics, err := localenv.NewMetricsReader(ctx, c, ns, metricsReaderBinding)
	if metrics != nil {
		defer func() {
			if err := metrics.Close(context.Background()); err != nil {
				fmt.Printf("delete ClusterRoleBinding %s: %v\n", metricsReaderBinding, err)
			}
		}()
	}
	if err != nil {
		return nil, err
	}

	b := &cpBench{n: 5}
	if b.base, err = scrape(ctx, metrics); err != nil {
		return nil, err
	}
	for i := range 3 {
		d, err := provision(ctx, env, c, dc, ns, []string{fmt.Sprintf("single-%d", i)}, nil)
		if err != nil {
			return nil, err
		}
		b.single = append(b.single, d[0])
		if err := deleteAll(ctx, c, ns); err != nil {
			return nil, err
		}
	}

	var names []string
	for i := range b.n {
		names = append(names, fmt.Sprintf("five-%d", i))
	}
	start := time.Now()
	if b.each, err = provision(ctx, env, c, dc, ns, names, nil); err != nil {
		return nil, err
	}
	b.concurrent = time.Since(start)

	// Steady state: let the last status writes settle, then count what the
	// operator asks of API servers over one minute.
	time.Sleep(30 * time.Second)
	before, err := scrape(ctx, metrics)
	if err != nil {
		return nil, err
	}
	time.Sleep(time.Minute)
	after, err := scrape(ctx, metrics)
	if err != nil {
		return nil, err
	}
	b.with = after
	b.reconciles = after.reconciles - before.reconciles
	b.steady = map[string]float64{}
	for k, v := range after.requests {
		if d := v - before.requests[k]; d > 0 {
			b.steady[k] = d
		}
	}
	return b, deleteAll(ctx, c, ns)
}

// mgmtClient is a client of the data center's management cluster.
func mgmtClient(dc localenv.DataCenter) (client.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", dc.Kubeconfig())
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = marinav1alpha1.AddToScheme(scheme)
	return client.New(cfg, client.Options{Scheme: scheme})
}

// benchNamespace creates the namespace and any other objects; cleanup
// deletes the namespace.
func benchNamespace(ctx context.Context, env *localenv.Env, c client.Client, ns string, objs ...client.Object) (cleanup func(), err error) {
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	cleanup = func() { _ = c.Delete(context.Background(), nsObj) }
	for _, obj := range append([]client.Object{nsObj}, objs...) {
		if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return cleanup, err
		}
	}
	return cleanup, nil
}

// provision creates the ControlPlanes at once, each changed by mutate if
// given, and returns how long each took to become Ready.
func provision(ctx context.Context, env *localenv.Env, c client.Client, dc localenv.DataCenter, ns string, names []string, mutate func(*marinav1alpha1.ControlPlane)) ([]time.Duration, error) {
	start := time.Now()
	for _, n := range names {
		cp, err := env.ControlPlane(dc, ns, n)
		if err != nil {
			return nil, err
		}
		cp.Spec.DeletionPolicy = marinav1alpha1.DeletionPolicyDelete
		if mutate != nil {
			mutate(cp)
		}
		if err := c.Create(ctx, cp); err != nil {
			return nil, err
		}
	}
	out := make([]time.Duration, len(names))
	var wg sync.WaitGroup
	errs := make(chan error, len(names))
	for i, n := range names {
		wg.Go(func() {
			deadline := time.Now().Add(5 * time.Minute)
			cp := &marinav1alpha1.ControlPlane{}
			for time.Now().Before(deadline) {
				if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: n}, cp); err == nil {
					if r := meta.FindStatusCondition(cp.Status.Conditions, marinav1alpha1.ConditionReady); r != nil && r.Status == metav1.ConditionTrue {
						out[i] = time.Since(start)
						return
					}
				}
				time.Sleep(250 * time.Millisecond)
			}
			errs <- fmt.Errorf("ControlPlane %s not Ready after 5 minutes", n)
		})
	}
	wg.Wait()
	close(errs)
	return out, <-errs
}

func deleteAll(ctx context.Context, c client.Client, ns string) error {
	if err := c.DeleteAllOf(ctx, &marinav1alpha1.ControlPlane{}, client.InNamespace(ns)); err != nil {
		return err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		l := &marinav1alpha1.ControlPlaneList{}
		if err := c.List(ctx, l, client.InNamespace(ns)); err == nil && len(l.Items) == 0 {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("ControlPlanes in %s not deleted after 3 minutes", ns)
}

// metricsReaderBinding lets the bench's ServiceAccount read the operators'
// metrics; it is removed when the bench ends.
const metricsReaderBinding = "marina-bench-metrics-reader"

// operatorMetrics are the figures read from the operator's metrics.
type operatorMetrics struct {
	rss, heap float64
	// requests by "<mgmt|federation> <verb>"
	requests map[string]float64
	// reconciles of ControlPlanes so far
	reconciles float64
}

func scrape(ctx context.Context, r *localenv.MetricsReader) (operatorMetrics, error) {
	m := operatorMetrics{requests: map[string]float64{}}
	text, err := r.Scrape(ctx, "marina-controlplane")
	if err != nil {
		return m, err
	}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, value, ok := sample(line)
		if !ok {
			continue
		}
		switch {
		case name == "process_resident_memory_bytes":
			m.rss = value
		case name == "go_memstats_heap_inuse_bytes":
			m.heap = value
		case strings.HasPrefix(name, "controller_runtime_reconcile_total{") && label(name, "controller") == "controlplane":
			m.reconciles += value
		case strings.HasPrefix(name, "rest_client_requests_total{"):
			host := label(name, "host")
			kind := "federation"
			if strings.HasPrefix(host, "10.") || strings.Contains(host, "kubernetes.default") {
				kind = "management"
			}
			m.requests[kind+" "+label(name, "method")] += value
		}
	}
	return m, sc.Err()
}

func sample(line string) (string, float64, bool) {
	if line == "" || line[0] == '#' {
		return "", 0, false
	}
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		return "", 0, false
	}
	v, err := strconv.ParseFloat(line[i+1:], 64)
	return line[:i], v, err == nil
}

func label(series, name string) string {
	_, rest, ok := strings.Cut(series, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// report writes the control plane section of the benchmark report.
func (b *cpBench) report(w *strings.Builder) {
	sorted := slices.Clone(b.single)
	slices.Sort(sorted)
	fmt.Fprintf(w, "\n## Control planes (dc1, external etcd, images cached)\n\n")
	fmt.Fprintf(w, "| measure | value | target |\n|---|---|---|\n")
	fmt.Fprintf(w, "| one control plane with the engine's real CRD bundle (19 CRDs and the stand-in Cluster CRD established), create → Ready (p50 of %d: %s) | %s | ≤ 15 s |\n", len(sorted), durations(b.single), sorted[len(sorted)/2].Round(100*time.Millisecond))
	fmt.Fprintf(w, "| %d control planes at once, create → all Ready (each: %s) | %s | ≤ 2 min |\n", b.n, durations(b.each), b.concurrent.Round(100*time.Millisecond))
	fmt.Fprintf(w, "| operator memory per control plane (RSS, %d vs 0) | %.2f MiB (%.0f → %.0f MiB) | ≤ 5 MiB |\n", b.n, (b.with.rss-b.base.rss)/float64(b.n)/(1<<20), b.base.rss/(1<<20), b.with.rss/(1<<20))
	fmt.Fprintf(w, "| operator Go heap in use per control plane | %.2f MiB (%.1f → %.1f MiB) | |\n", (b.with.heap-b.base.heap)/float64(b.n)/(1<<20), b.base.heap/(1<<20), b.with.heap/(1<<20))
	var keys []string
	writes := 0.0
	for k, v := range b.steady {
		keys = append(keys, fmt.Sprintf("%s %.0f", k, v))
		if verb := strings.Fields(k)[1]; verb != "GET" && verb != "LIST" && verb != "WATCH" {
			writes += v
		}
	}
	slices.Sort(keys)
	detail := "none"
	if len(keys) > 0 {
		detail = strings.Join(keys, ", ")
	}
	fmt.Fprintf(w, "| operator API requests per minute at steady state (%d Ready) | %s | no writes but the leader Lease, no more reads than a resync |\n", b.n, detail)
	fmt.Fprintf(w, "| ControlPlane reconciles in that minute | %.0f | no writes: 0 reconciles |\n", b.reconciles)
	fmt.Fprintf(w, "\nRequests are client-go's `rest_client_requests_total` of the operator, by API server and verb, over one minute starting 30 s after the last control plane became Ready; reconciles are controller-runtime's `controller_runtime_reconcile_total` for the controlplane controller over the same minute. The operator holds its leader Lease by renewing it every 2 s (controller-runtime's default retry period), which are the only writes (%.0f PUTs) when nothing reconciles. Memory is the operator's `process_resident_memory_bytes` and `go_memstats_heap_inuse_bytes`.\n", writes)
}

func durations(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Round(100*time.Millisecond).String())
	}
	return strings.Join(s, ", ")
}
