package capi

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestControlPlaneInitialized(t *testing.T) {
	cond := func(typ, status string) any { return map[string]any{"type": typ, "status": status} }
	for _, tc := range []struct {
		name   string
		status map[string]any
		want   bool
	}{
		{"no status", nil, false},
		{"v1beta2 initialized", map[string]any{"initialization": map[string]any{"controlPlaneInitialized": true}}, true},
		{"v1beta2 not yet", map[string]any{"initialization": map[string]any{"infrastructureProvisioned": true, "controlPlaneInitialized": false}}, false},
		{"v1beta1 controlPlaneReady", map[string]any{"controlPlaneReady": true}, true},
		{"v1beta1 condition", map[string]any{"conditions": []any{cond("InfrastructureReady", "True"), cond("ControlPlaneInitialized", "True")}}, true},
		{"v1beta1 condition False", map[string]any{"conditions": []any{cond("ControlPlaneInitialized", "False")}}, false},
		{"v1beta2 with the deprecated v1beta1 conditions", map[string]any{"deprecated": map[string]any{"v1beta1": map[string]any{"conditions": []any{cond("ControlPlaneInitialized", "True")}}}}, true},
		{"another condition True", map[string]any{"conditions": []any{cond("Available", "True")}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &unstructured.Unstructured{Object: map[string]any{}}
			if tc.status != nil {
				c.Object["status"] = tc.status
			}
			if got := ControlPlaneInitialized(c); got != tc.want {
				t.Errorf("controlPlaneInitialized = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPaused(t *testing.T) {
	for _, tc := range []struct {
		name string
		obj  map[string]any
		want bool
	}{
		{"running", map[string]any{"spec": map[string]any{"paused": false}}, false},
		{"spec.paused", map[string]any{"spec": map[string]any{"paused": true}}, true},
		{"annotation", map[string]any{"metadata": map[string]any{"annotations": map[string]any{"cluster.x-k8s.io/paused": "" + "true"}}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Paused(&unstructured.Unstructured{Object: tc.obj}); got != tc.want {
				t.Errorf("Paused = %v, want %v", got, tc.want)
			}
		})
	}
}
