// Package render turns a ControlPlane into the objects of its control plane
// in the management cluster: it maps the spec onto the values of
// charts/controlplane and renders the chart with Helm's engine. It is pure:
// values in, objects out, nothing read from or written to a cluster.
package render

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	cpchart "github.com/marina-platform/marina/charts/controlplane"
	"github.com/marina-platform/marina/internal/manifest"
)

// ManagedBy is the app.kubernetes.io/managed-by label of every object the
// chart renders; the operator's caches and clean-up select on it.
const ManagedBy = "marina-controlplane"

// Chart is the loaded controlplane chart. Load it once; Render is safe for
// concurrent use.
type Chart struct {
	chart *chart.Chart
}

// Load reads the chart embedded in the binary.
func Load() (*Chart, error) {
	return LoadFS(cpchart.Files)
}

// LoadFS reads a chart from a file system rooted at the chart's folder.
func LoadFS(fsys fs.FS) (*Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: p, Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the controlplane chart: %w", err)
	}
	c, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("load the controlplane chart: %w", err)
	}
	return &Chart{chart: c}, nil
}

// Render renders the chart for one control plane in namespace and returns
// its objects, ordered by template file and then as written. Values that
// break the chart's schema or a template's checks fail with Helm's message,
// which names the value.
func (c *Chart) Render(namespace string, v Values) ([]*unstructured.Unstructured, error) {
	vals, err := toMap(v)
	if err != nil {
		return nil, err
	}
	return c.RenderMap(namespace, vals)
}

// RenderMap renders the chart with values given as a plain map, as Helm
// reads them from a values file.
func (c *Chart) RenderMap(namespace string, vals map[string]any) ([]*unstructured.Unstructured, error) {
	name, _ := vals["name"].(string)
	rv, err := chartutil.ToRenderValues(c.chart, vals, chartutil.ReleaseOptions{
		// No template uses the release name; the ControlPlane's name is a
		// value of its own.
		Name:      name,
		Namespace: namespace,
		IsInstall: true,
	}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, fmt.Errorf("values of control plane %s: %w", name, err)
	}
	// Not strict, as `helm template` and `helm install`: the helpers read
	// optional keys of the dicts they are given. Required values are checked
	// by the schema and the templates' own `required`/`fail`.
	out, err := engine.Render(c.chart, rv)
	if err != nil {
		return nil, fmt.Errorf("render control plane %s: %w", name, err)
	}

	names := make([]string, 0, len(out))
	for f := range out {
		if path.Ext(f) == ".yaml" && !strings.HasPrefix(path.Base(f), "_") {
			names = append(names, f)
		}
	}
	slices.Sort(names)
	var objs []*unstructured.Unstructured
	for _, n := range names {
		docs, err := manifest.Parse([]byte(out[n]))
		if err != nil {
			return nil, fmt.Errorf("render control plane %s: %s: %w", name, n, err)
		}
		objs = append(objs, docs...)
	}
	return objs, nil
}

// toMap turns Values into the plain map Helm coalesces with values.yaml.
func toMap(v Values) (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(data, &m)
}
