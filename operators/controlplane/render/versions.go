package render

import "github.com/marina-platform/marina/operators/controlplane/engine"

// ImageVersions are the default tags of the Kubernetes and etcd images a
// control plane runs for one engine version.
type ImageVersions struct {
	Kubernetes string
	Etcd       string
}

// ImagesFor returns the default image tags for an engine version such as
// v1.16.8, from the engine's release table. An engine minor the table does
// not know gets no tags, so the chart's defaults apply (validation refuses
// such a version before it gets here).
func ImagesFor(version string) ImageVersions {
	r, err := engine.Lookup(version)
	if err != nil {
		return ImageVersions{}
	}
	return ImageVersions{Kubernetes: r.Kubernetes, Etcd: r.Etcd}
}
