// Package engine describes the federation engine (Karmada) releases Marina
// runs: for each supported minor, the Kubernetes and etcd it is released
// with, where its CRD bundle is published, and the admission webhooks its
// own installer registers. It holds facts about the engine, not Marina's
// objects; the components turn these into objects.
package engine

import (
	"fmt"
	"slices"
	"strings"
)

// Release is one engine minor Marina supports.
type Release struct {
	// Minor is the engine's minor version, such as v1.16.
	Minor string
	// Checked is the newest patch release Marina was verified with.
	Checked string
	// Kubernetes is the tag of the kube-apiserver and kube-controller-manager
	// images the engine's installers default to for this minor.
	Kubernetes string
	// Etcd is the tag of the etcd image its installers default to.
	Etcd string
	// Webhooks are the admission webhooks registered in the federation API
	// server for this minor.
	Webhooks []Webhook
}

// releases follows the engine's own installer defaults (karmada-operator's
// KubeDefaultVersion and EtcdDefaultVersion at each tag).
var releases = []Release{
	{Minor: "v1.16", Checked: "v1.16.8", Kubernetes: "v1.34.1", Etcd: "3.6.0-0", Webhooks: webhooks},
	{Minor: "v1.17", Checked: "v1.17.5", Kubernetes: "v1.35.2", Etcd: "3.6.6-0", Webhooks: webhooks},
	{Minor: "v1.18", Checked: "v1.18.2", Kubernetes: "v1.35.2", Etcd: "3.6.6-0", Webhooks: webhooks},
}

// Releases returns every supported minor, oldest first.
func Releases() []Release { return slices.Clone(releases) }

// Minors lists the supported minors, such as "v1.16, v1.17, v1.18", for
// messages.
func Minors() string {
	m := make([]string, len(releases))
	for i, r := range releases {
		m[i] = r.Minor
	}
	return strings.Join(m, ", ")
}

// Lookup returns the release of a version such as v1.16.8 or v1.17.0-rc.1.
func Lookup(version string) (Release, error) {
	minor := MinorOf(version)
	for _, r := range releases {
		if r.Minor == minor {
			return r, nil
		}
	}
	return Release{}, fmt.Errorf("engine version %s is not supported; supported minors are %s", version, Minors())
}

// MinorOf returns vMAJOR.MINOR of a version, or "" when it has no minor.
func MinorOf(version string) string {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 || !strings.HasPrefix(parts[0], "v") {
		return ""
	}
	return parts[0] + "." + parts[1]
}

// ReleaseCRDsURL is where the engine publishes the CRD bundle of a
// release; a ControlPlane without spec.crds.http downloads it from there.
func ReleaseCRDsURL(version string) string {
	return "https://github.com/karmada-io/karmada/releases/download/" + version + "/crds.tar.gz"
}
