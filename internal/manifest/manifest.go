// Package manifest reads multi-document YAML (or JSON) manifests into
// objects and puts them in the order an API server can take them: what
// other objects live in or are kinds of first.
package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Parse reads every document of data. Empty documents are skipped; a
// document that is not an object with apiVersion, kind and metadata.name is
// an error naming its position (1 for the first), so a person can find it.
func Parse(data []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for n := 1; ; n++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		var missing []string
		if u.GetAPIVersion() == "" {
			missing = append(missing, "apiVersion")
		}
		if u.GetKind() == "" {
			missing = append(missing, "kind")
		}
		if u.GetName() == "" {
			missing = append(missing, "metadata.name")
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("document %d (kind %q, name %q) lacks %v", n, u.GetKind(), u.GetName(), missing)
		}
		objs = append(objs, u)
	}
}

// tier is where a kind goes in the order: CRDs and namespaces first (other
// objects are of their kinds or live in them), then what workloads and
// policies refer to (accounts, roles, configuration), then the rest.
func tier(u *unstructured.Unstructured) int {
	gvk := u.GroupVersionKind()
	switch {
	case gvk.Group == "apiextensions.k8s.io" && gvk.Kind == "CustomResourceDefinition":
		return 0
	case gvk.Group == "" && gvk.Kind == "Namespace":
		return 1
	case gvk.Group == "" && (gvk.Kind == "ServiceAccount" || gvk.Kind == "ConfigMap" || gvk.Kind == "Secret"),
		gvk.Group == "rbac.authorization.k8s.io" && (gvk.Kind == "ClusterRole" || gvk.Kind == "Role"):
		return 2
	case gvk.Group == "rbac.authorization.k8s.io":
		return 3
	default:
		return 4
	}
}

// Order sorts objs in place, stably, so that each tier comes after the
// tiers it may depend on; within a tier the manifest's order is kept.
func Order(objs []*unstructured.Unstructured) {
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int { return tier(a) - tier(b) })
}
