package render

import "strings"

// ImageVersions are the default tags of the Kubernetes and etcd images a
// control plane runs for one engine version.
type ImageVersions struct {
	Kubernetes string
	Etcd       string
}

// engineImages follows the engine's releases: each minor version of the
// engine is tested upstream against one Kubernetes minor, whose API server
// and controller manager the control plane then runs. Add a line with each
// engine minor Marina supports.
var engineImages = map[string]ImageVersions{
	"v1.16": {Kubernetes: "v1.34.1", Etcd: "3.6.0-0"},
}

// ImagesFor returns the default image tags for an engine version such as
// v1.16.0. An engine minor the table does not know gets no tags, so the
// chart's defaults (those of the newest supported minor) apply.
func ImagesFor(version string) ImageVersions {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return ImageVersions{}
	}
	return engineImages[parts[0]+"."+parts[1]]
}
