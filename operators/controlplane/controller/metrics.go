package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

var (
	conditionGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "marina_controlplane_condition",
		Help: "1 when the ControlPlane's condition has the status in the label, else 0; one series per condition type and status.",
	}, []string{"namespace", "name", "type", "status"})
	applies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "marina_controlplane_applies_total",
		Help: "Objects applied in the management cluster for a ControlPlane, by result: applied (a server-side apply sent) or unchanged (skipped: neither the intent nor the object changed since the last apply).",
	}, []string{"namespace", "name", "result"})
	readySeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "marina_controlplane_ready_seconds",
		Help:    "Seconds from a ControlPlane's creation until it was first Ready.",
		Buckets: []float64{10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600},
	})
)

func init() {
	metrics.Registry.MustRegister(conditionGauge, applies, readySeconds)
}

// observe publishes the conditions of a ControlPlane whose status is being
// written, and how long it took to become Ready the first time.
func observe(before, cp *marinav1alpha1.ControlPlane) {
	firstReady := before.Status.Version == ""
	for _, c := range cp.Status.Conditions {
		for _, st := range []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown} {
			v := 0.0
			if c.Status == st {
				v = 1
			}
			conditionGauge.WithLabelValues(cp.Namespace, cp.Name, c.Type, string(st)).Set(v)
		}
		if c.Type == marinav1alpha1.ConditionReady && c.Status == metav1.ConditionTrue && firstReady {
			readySeconds.Observe(c.LastTransitionTime.Sub(cp.CreationTimestamp.Time).Seconds())
		}
	}
}

// forget drops a deleted ControlPlane's series.
func forget(cp *marinav1alpha1.ControlPlane) {
	conditionGauge.DeletePartialMatch(prometheus.Labels{"namespace": cp.Namespace, "name": cp.Name})
	applies.DeletePartialMatch(prometheus.Labels{"namespace": cp.Namespace, "name": cp.Name})
}
