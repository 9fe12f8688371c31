package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

// Metrics of the PolicySet reconciler. Labels name the PolicySet's
// namespace and the control plane, never object contents.
var (
	applySeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "marina_sync_apply_duration_seconds",
		Help:    "Time one pass of a PolicySet over one control plane took: apply, drift check and prune of the whole set.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	})
	objectsApplied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "marina_sync_objects_changed_total",
		Help: "Objects a pass changed in a control plane, by why: a new revision of the set (update), someone's change put back (drift_corrected), or a removal (pruned).",
	}, []string{"reason"})
	driftReported = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "marina_sync_drift_reported_total",
		Help: "Changed objects found and left in place by PolicySets in driftMode Report, per pass that found them.",
	})
	targetProblems = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "marina_sync_target_problems_total",
		Help: "Passes over a control plane that did not put the whole set in place, by reason (ControlPlaneNotReady, ClusterUnreachable, KindNotServed, ApplyFailed).",
	}, []string{"reason"})
)

func init() {
	metrics.Registry.MustRegister(applySeconds, objectsApplied, driftReported, targetProblems)
}

// observe counts one pass's outcome over one control plane.
func observe(ps *marinav1alpha1.PolicySet, out outcome) {
	objectsApplied.WithLabelValues("update").Add(float64(out.changed))
	objectsApplied.WithLabelValues("pruned").Add(float64(len(out.pruned)))
	if ps.Spec.DriftMode == marinav1alpha1.DriftModeReport {
		driftReported.Add(float64(len(out.drifted)))
	} else {
		objectsApplied.WithLabelValues("drift_corrected").Add(float64(len(out.drifted)))
	}
	switch {
	case len(out.failed) > 0:
		targetProblems.WithLabelValues(marinav1alpha1.ReasonApplyFailed).Inc()
	case len(out.forbidden) > 0:
		targetProblems.WithLabelValues(marinav1alpha1.ReasonNotPermitted).Inc()
	case len(out.notServed) > 0:
		targetProblems.WithLabelValues(marinav1alpha1.ReasonKindNotServed).Inc()
	}
}
