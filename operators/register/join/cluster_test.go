package join

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

// The engine writes taints of its own into the Cluster's spec.taints (one
// list, replaced whole by whoever writes it): a join keeps those, and
// removes a taint only when Marina set it before.
func TestDesiredClusterKeepsTheEnginesTaints(t *testing.T) {
	live := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{annotationTaints: "dedicated,old"}},
		"spec": map[string]any{"taints": []any{
			map[string]any{"key": "cluster.karmada.io/not-ready", "effect": "NoSchedule"},
			map[string]any{"key": "dedicated", "value": "batch", "effect": "NoSchedule"},
			map[string]any{"key": "old", "effect": "NoExecute"},
		}},
	}}
	p := Pair{
		Cluster:      "edge",
		MemberConfig: &rest.Config{Host: "https://10.0.0.1:6443"},
		Properties: marinav1alpha1.ClusterProperties{
			Taints:        []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}},
			ClusterLabels: map[string]string{"tier": "gold", marinav1alpha1.LabelMemberCluster: "spoofed"},
		},
	}
	want := p.desiredCluster("uid-1", live, true)
	taints, _, _ := unstructured.NestedSlice(want.Object, "spec", "taints")
	var keys []string
	for _, x := range taints {
		m := x.(map[string]any)
		keys = append(keys, m["key"].(string)+"="+fmtValue(m["value"]))
	}
	if !slices.Equal(keys, []string{"dedicated=gpu", "cluster.karmada.io/not-ready="}) {
		t.Errorf("taints %v: want Marina's new value and the engine's own, without the one Marina dropped", keys)
	}
	if got := want.GetAnnotations()[annotationTaints]; got != "dedicated" {
		t.Errorf("taints annotation %q", got)
	}
	if got := want.GetLabels()[marinav1alpha1.LabelMemberCluster]; got != "edge" {
		t.Errorf("a user's label overrode Marina's ownership label: %q", got)
	}
	if clusterUpToDate(live, want) {
		t.Error("a live Cluster with other taints counts as up to date")
	}
}

func fmtValue(v any) string {
	s, _ := v.(string)
	return s
}
