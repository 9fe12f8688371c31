// Package policies holds Marina's default policy bundles, embedded in the
// binaries: a PolicySet names one in spec.sources[].bundle, and the sync
// operator applies its objects to every selected control plane. Each
// bundle is a folder of YAML manifests; README.md says what each does.
package policies

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/marina-platform/marina/internal/manifest"
)

//go:embed */*.yaml
var bundles embed.FS

// Names lists the bundles, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(bundles, ".")
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// Objects are a bundle's objects, file by file in name order and each
// file's documents in order. An unknown name is an error listing the known
// ones.
func Objects(name string) ([]*unstructured.Unstructured, error) {
	if !slices.Contains(Names(), name) {
		return nil, fmt.Errorf("no policy bundle %q; the bundles are %s", name, strings.Join(Names(), ", "))
	}
	// Glob sorts; the name is a folder's, so it holds no pattern.
	files, err := fs.Glob(bundles, path.Join(name, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		data, err := bundles.ReadFile(f)
		if err != nil {
			return nil, err
		}
		docs, err := manifest.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("policy bundle %s: %s: %w", name, path.Base(f), err)
		}
		objs = append(objs, docs...)
	}
	return objs, nil
}
