package controller_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// policies is n ClusterPropagationPolicies as YAML documents, split over
// ConfigMap keys of 100 each; generation changes the priority of one.
func policies(n, changed, generation int) map[string]string {
	data := map[string]string{}
	for i := range n {
		prio := 0
		if i == changed {
			prio = generation
		}
		key := fmt.Sprintf("policies-%02d.yaml", i/100)
		data[key] += fmt.Sprintf(`---
apiVersion: policy.karmada.io/v1alpha1
kind: ClusterPropagationPolicy
metadata:
  name: bench-%04d
spec:
  priority: %d
  resourceSelectors: [{apiVersion: v1, kind: ConfigMap, name: bench-%04d, namespace: default}]
  placement: {clusterAffinity: {}}
`, i, prio, i)
	}
	return data
}

// writes counts, by method and host, the requests of this process that
// change something (client-go's own request metric, which every client
// here reports into).
func writes(b *testing.B) map[string]float64 {
	b.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "rest_client_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var method, host string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "method":
					method = l.GetValue()
				case "host":
					host = l.GetValue()
				}
			}
			if slices.Contains([]string{"POST", "PUT", "PATCH", "DELETE"}, method) {
				out[method+" "+host] += m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// BenchmarkPropagation measures, with MARINA_BENCH_DATA_CENTERS data
// centers (2: each a management API server running marina-sync's
// reconcilers, Peers of one another), MARINA_BENCH_CONTROL_PLANES federation
// API servers (20, split evenly between the data centers) holding the
// engine's real CRDs, and a PolicySet of MARINA_BENCH_POLICIES
// ClusterPropagationPolicies (500) from a ConfigMap, authored in the first
// data center and replicated to the others:
//   - propagation: one policy changed in the ConfigMap → the PolicySet's
//     status in every data center (the replicas' in the others) says every
//     control plane holds the new revision (MARINA_BENCH_CHANGES times, 20;
//     p50 and p99);
//   - drift correction: one policy changed by hand in a control plane →
//     put back (20 times, over the control planes; p50 and p99);
//   - the operators' writes in a quiet minute, and the heap of this
//     process, which runs every data center's operators.
//
// Run it once (-benchtime 1x): it sets up its own API servers and counts
// its own rounds; b.N is not used.
func BenchmarkPropagation(b *testing.B) {
	nCP := envInt("MARINA_BENCH_CONTROL_PLANES", 20)
	nDC := min(envInt("MARINA_BENCH_DATA_CENTERS", 2), nCP)
	nObj := envInt("MARINA_BENCH_POLICIES", 500)
	var names []string
	perDC := make([][]string, nDC)
	for i := range nCP {
		name := fmt.Sprintf("cp-%02d", i)
		names = append(names, name)
		perDC[i*nDC/nCP] = append(perDC[i*nDC/nCP], name)
	}
	setup := time.Now()
	f := startDataCenters(b, perDC...)
	ctx := context.Background()
	b.Logf("%d data centers with %d control planes (API servers with the engine's CRDs) up in %s", nDC, nCP, time.Since(setup).Round(time.Second))

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bench"}, Data: policies(nObj, -1, 0)}
	if err := f.mgmt.Create(ctx, cm); err != nil {
		b.Fatal(err)
	}
	ps := &marinav1alpha1.PolicySet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bench"},
		Spec: marinav1alpha1.PolicySetSpec{
			Sources:              []marinav1alpha1.PolicySource{{ConfigMapRef: &marinav1alpha1.ConfigMapReference{Name: "bench"}}},
			ControlPlaneSelector: metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}},
		},
	}
	start := time.Now()
	if err := f.mgmt.Create(ctx, ps); err != nil {
		b.Fatal(err)
	}
	// everywhere says whether every data center's PolicySet (the original
	// and its replicas) reports a new revision, one checksum, in each of
	// its control planes.
	everywhere := func(previous string) (string, bool) {
		sum := ""
		for i, mgmt := range f.mgmts {
			got := &marinav1alpha1.PolicySet{}
			if err := mgmt.Get(ctx, client.ObjectKeyFromObject(ps), got); err != nil || got.Status.Checksum == "" || got.Status.Checksum == previous ||
				len(got.Status.Targets) != len(f.controlPlanes[i]) || (sum != "" && got.Status.Checksum != sum) {
				return "", false
			}
			for _, t := range got.Status.Targets {
				if t.Revision != got.Status.Checksum {
					return "", false
				}
			}
			sum = got.Status.Checksum
		}
		return sum, true
	}
	wait := func(what string, ok func() bool) {
		deadline := time.Now().Add(5 * time.Minute)
		for !ok() {
			if time.Now().After(deadline) {
				b.Fatalf("%s: not within 5m", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var revision string
	wait("the first revision everywhere", func() bool {
		var ok bool
		revision, ok = everywhere("")
		return ok
	})
	b.Logf("first apply: %d objects in %d control planes of %d data centers in %s", nObj, nCP, nDC, time.Since(start).Round(time.Millisecond))

	b.ResetTimer()
	var prop []time.Duration
	for i := range envInt("MARINA_BENCH_CHANGES", 20) {
		cur := &corev1.ConfigMap{}
		if err := f.mgmt.Get(ctx, client.ObjectKeyFromObject(cm), cur); err != nil {
			b.Fatal(err)
		}
		cur.Data = policies(nObj, i%nObj, i+1)
		t0 := time.Now()
		if err := f.mgmt.Update(ctx, cur); err != nil {
			b.Fatal(err)
		}
		wait("revision "+strconv.Itoa(i+2)+" everywhere", func() bool {
			r, ok := everywhere(revision)
			if ok {
				revision = r
			}
			return ok
		})
		prop = append(prop, time.Since(t0))
	}
	b.StopTimer()

	var drift []time.Duration
	for i := range 20 {
		fed := f.fed[names[i%nCP]]
		u := obj("policy.karmada.io/v1alpha1", "ClusterPropagationPolicy", "", fmt.Sprintf("bench-%04d", (i*37)%nObj))
		if err := fed.Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
			b.Fatal(err)
		}
		want, _, _ := unstructured.NestedInt64(u.Object, "spec", "priority")
		if err := unstructured.SetNestedField(u.Object, int64(4242), "spec", "priority"); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := fed.Update(ctx, u); err != nil {
			b.Fatal(err)
		}
		wait("the hand edit put back", func() bool {
			got := u.DeepCopy()
			if fed.Get(ctx, client.ObjectKeyFromObject(u), got) != nil {
				return false
			}
			p, _, _ := unstructured.NestedInt64(got.Object, "spec", "priority")
			return p == want
		})
		drift = append(drift, time.Since(t0))
	}

	// Quiet: nothing changes anywhere, so nothing may be written.
	time.Sleep(time.Duration(envInt("MARINA_BENCH_SETTLE_SECONDS", 30)) * time.Second) // Events go out asynchronously, rate-limited by client-go: let the corrections' ones finish
	before := writes(b)
	quiet := envInt("MARINA_BENCH_QUIET_SECONDS", 60)
	time.Sleep(time.Duration(quiet) * time.Second)
	steady := 0.0
	for k, v := range writes(b) {
		if d := v - before[k]; d > 0 {
			steady += d
			method, host, _ := strings.Cut(k, " ")
			b.Logf("in the quiet: %v × %s to %s (%s; known: %v)", d, method, host, f.hosts[host], f.hosts)
		}
	}

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	pct := func(d []time.Duration, p float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[min(len(s)-1, int(float64(len(s))*p))].Seconds()
	}
	b.ReportMetric(pct(prop, 0.50), "propagation-p50-s")
	b.ReportMetric(pct(prop, 0.99), "propagation-p99-s")
	b.ReportMetric(pct(drift, 0.50), "drift-p50-s")
	b.ReportMetric(pct(drift, 0.99), "drift-p99-s")
	b.ReportMetric(steady, "writes-in-quiet")
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d data centers, %d control planes × %d policies: propagation p50 %.3fs p99 %.3fs (%d changes); drift correction p50 %.3fs p99 %.3fs (%d edits); %v writes in %ds quiet; heap %.1f MiB",
		nDC, nCP, nObj, pct(prop, 0.5), pct(prop, 0.99), len(prop), pct(drift, 0.5), pct(drift, 0.99), len(drift), steady, quiet, float64(ms.HeapAlloc)/(1<<20))
}
