// Package capi reads Cluster API Clusters as unstructured objects, at the
// version the management cluster serves (v1beta2 in current releases,
// v1beta1 before), so that the register operator works with either and
// needs none of Cluster API's code: which version is served, whether a
// Cluster's control plane is initialized, whether it is paused.
package capi

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The Cluster kind at the versions Marina reads, newest first.
var (
	ClusterV1beta2 = schema.GroupVersionKind{Group: "cluster.x-k8s.io", Version: "v1beta2", Kind: "Cluster"}
	ClusterV1beta1 = schema.GroupVersionKind{Group: "cluster.x-k8s.io", Version: "v1beta1", Kind: "Cluster"}
	Versions       = []schema.GroupVersionKind{ClusterV1beta2, ClusterV1beta1}
)

// pausedAnnotation pauses a Cluster as spec.paused does.
const pausedAnnotation = "cluster.x-k8s.io/paused"

// Served is the newest Cluster kind the mapper knows, or nil where
// Cluster API is not installed.
func Served(mapper meta.RESTMapper) *schema.GroupVersionKind {
	for _, gvk := range Versions {
		if _, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
			return &gvk
		}
	}
	return nil
}

// Paused says whether a Cluster is paused (spec.paused or the annotation).
func Paused(c *unstructured.Unstructured) bool {
	paused, _, _ := unstructured.NestedBool(c.Object, "spec", "paused")
	return paused || c.GetAnnotations()[pausedAnnotation] != ""
}

// ControlPlaneInitialized is Cluster API's gate for a workload cluster
// whose API server answers: v1beta2's status.initialization, v1beta1's
// ControlPlaneInitialized condition or status.controlPlaneReady.
func ControlPlaneInitialized(c *unstructured.Unstructured) bool {
	if ok, _, _ := unstructured.NestedBool(c.Object, "status", "initialization", "controlPlaneInitialized"); ok {
		return true
	}
	if ok, _, _ := unstructured.NestedBool(c.Object, "status", "controlPlaneReady"); ok {
		return true
	}
	for _, path := range [][]string{{"status", "conditions"}, {"status", "deprecated", "v1beta1", "conditions"}} {
		conds, _, _ := unstructured.NestedSlice(c.Object, path...)
		for _, x := range conds {
			m, _ := x.(map[string]any)
			if m["type"] == "ControlPlaneInitialized" && m["status"] == "True" {
				return true
			}
		}
	}
	return false
}
