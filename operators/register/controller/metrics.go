package controller

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

var (
	joinSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "marina_register_join_duration_seconds",
		Help:    "Time one join of a member to a control plane took, from the first request to both sides done.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
	})
	probeSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "marina_register_probe_duration_seconds",
		Help:    "Time one probe of a member's API server took (version and node list), failed probes included.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	})
)

func init() {
	metrics.Registry.MustRegister(joinSeconds, probeSeconds, newMembersCollector())
}

// memberStates holds, by MemberCluster, its state in each control plane,
// for the members gauge.
var memberStates sync.Map

type controlPlaneState struct {
	namespace, controlPlane string
	joined, ready, unreach  bool
	dispatching             bool
}

// observe records a MemberCluster's state for the gauge.
func observe(mc *marinav1alpha1.MemberCluster) {
	reachable := meta.IsStatusConditionTrue(mc.Status.Conditions, marinav1alpha1.ConditionReachable)
	var states []controlPlaneState
	for _, st := range mc.Status.ControlPlanes {
		states = append(states, controlPlaneState{
			namespace: mc.Namespace, controlPlane: st.Name,
			joined:      meta.IsStatusConditionTrue(st.Conditions, marinav1alpha1.ConditionJoined),
			ready:       meta.IsStatusConditionTrue(st.Conditions, marinav1alpha1.ConditionReady),
			unreach:     !reachable,
			dispatching: meta.IsStatusConditionTrue(st.Conditions, marinav1alpha1.ConditionDispatching),
		})
	}
	memberStates.Store(types.NamespacedName{Namespace: mc.Namespace, Name: mc.Name}, states)
}

// forgetMember drops a deleted MemberCluster from the gauge.
func forgetMember(key types.NamespacedName) { memberStates.Delete(key) }

var membersDesc = prometheus.NewDesc("marina_register_members",
	"Member clusters per control plane and state: joined, ready, unreachable, dispatching (the control plane dispatches to it; a member counts in each state it is in).",
	[]string{"namespace", "control_plane", "state"}, nil)

// membersCollector sums memberStates when scraped, so that the gauge
// costs nothing between scrapes.
type membersCollector struct{}

func newMembersCollector() prometheus.Collector { return membersCollector{} }

func (membersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- membersDesc }

func (membersCollector) Collect(ch chan<- prometheus.Metric) {
	type key struct{ ns, cp, state string }
	counts := map[key]int{}
	memberStates.Range(func(_, v any) bool {
		for _, s := range v.([]controlPlaneState) {
			for state, in := range map[string]bool{"joined": s.joined, "ready": s.ready, "unreachable": s.unreach, "dispatching": s.dispatching} {
				k := key{s.namespace, s.controlPlane, state}
				if in {
					counts[k]++
				} else if _, ok := counts[k]; !ok {
					counts[k] = 0
				}
			}
		}
		return true
	})
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(membersDesc, prometheus.GaugeValue, float64(n), k.ns, k.cp, k.state)
	}
}
