// Package certmanager runs cert-manager's real controllers next to a
// management cluster: the CRDs from the pinned cert-manager release, and the
// cert-manager-controller binary built from hack/tools/cert-manager.
//
// Marina's main module never imports cert-manager's Go packages: they pull in
// every cloud DNS SDK cert-manager supports. The release is pinned in one
// place, hack/tools/cert-manager/go.mod, which the Makefile reads to build the
// binary and this package reads to find the matching CRDs, so the two cannot
// drift apart.
package certmanager

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/marina-platform/marina/internal/localenv/gomod"
	"github.com/marina-platform/marina/internal/localenv/proc"
)

const (
	// ModulePath is cert-manager's Go module.
	ModulePath = "github.com/cert-manager/cert-manager"
	// ToolsGoMod pins the release, relative to the repository root.
	ToolsGoMod = "hack/tools/cert-manager/go.mod"
	// BinaryName is the controller binary's name in the folder of test
	// binaries (KUBEBUILDER_ASSETS, marina-dev's --bin-dir).
	BinaryName = "cert-manager-controller"
	// DefaultClusterResourceNamespace holds the Secrets ClusterIssuers refer to.
	DefaultClusterResourceNamespace = "cert-manager"
)

// Version is the cert-manager release pinned in repoRoot's
// hack/tools/cert-manager/go.mod. It reads the single-line `require` the
// Makefile reads with awk, so both always agree.
func Version(repoRoot string) (string, error) {
	v, err := gomod.Required(filepath.Join(repoRoot, ToolsGoMod), ModulePath)
	if err != nil {
		return "", fmt.Errorf("read the cert-manager pin: %w", err)
	}
	return v, nil
}

// CRDs returns the paths of cert-manager's CRD files (cert-manager.io and
// acme.cert-manager.io) for the pinned release, from the module's deploy/crds
// in the Go module cache, downloading the module when needed.
//
// Those files are controller-gen output, plain YAML: the Helm chart's copies
// are templated, these are not. A file that ever holds template markup is an
// error rather than something a server would reject with a puzzling message.
func CRDs(ctx context.Context, repoRoot string) ([]string, error) {
	version, err := Version(repoRoot)
	if err != nil {
		return nil, err
	}
	dir, err := gomod.Download(ctx, ModulePath, version)
	if err != nil {
		return nil, err
	}
	crdDir := filepath.Join(dir, "deploy", "crds")
	// The folder also holds a README; only the YAML files are CRDs.
	files, err := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("cert-manager %s: no CRD files in %s", version, crdDir)
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if bytes.Contains(data, []byte("{{")) {
			return nil, fmt.Errorf("cert-manager %s: %s is a template, not plain CRD YAML; render it before installing", version, f)
		}
	}
	return files, nil
}

// Controller is one cert-manager-controller process, serving one cluster.
// The local environment runs one per management cluster, optionally inside
// that cluster's network namespace so it reaches the API server the way the
// cluster's own components do.
type Controller struct {
	// Name identifies the process and names its pid and log files in Dir;
	// BinaryName when empty. Give each cluster's controller its own.
	Name string
	// Binary is the cert-manager-controller built by `make test-binaries`.
	Binary string
	// Kubeconfig reaches the cluster's API server with rights to
	// cert-manager's kinds, Secrets, Events and CertificateRequest approval.
	Kubeconfig string
	// ClusterResourceNamespace holds the Secrets that ClusterIssuers refer
	// to; DefaultClusterResourceNamespace when empty.
	ClusterResourceNamespace string
	// Dir holds the pid file and the log.
	Dir string
	// NetNS is the network namespace to run in; the host's when empty.
	NetNS string
	// Verbosity is klog's --v; cert-manager logs each issuance at 2.
	Verbosity int
}

// Process is the controller as a proc spec.
func (c Controller) Process() proc.Spec {
	name := c.Name
	if name == "" {
		name = BinaryName
	}
	ns := c.ClusterResourceNamespace
	if ns == "" {
		ns = DefaultClusterResourceNamespace
	}
	return proc.Spec{
		Name: name,
		Path: c.Binary,
		Args: []string{
			"--kubeconfig=" + c.Kubeconfig,
			"--cluster-resource-namespace=" + ns,
			fmt.Sprintf("--v=%d", c.Verbosity),
		},
		NetNS: c.NetNS,
		Dir:   c.Dir,
	}
}

// LogFile receives the controller's log.
func (c Controller) LogFile() string { return c.Process().LogFile() }

// Start starts the controller, or leaves the one already running from an
// earlier start alone, and returns its PID. The controller keeps running
// after the caller exits; Stop ends it.
func (c Controller) Start() (int, error) {
	if _, err := os.Stat(c.Binary); err != nil {
		return 0, fmt.Errorf("cert-manager controller binary (built by `make test-binaries`): %w", err)
	}
	if c.Kubeconfig == "" {
		return 0, fmt.Errorf("cert-manager controller %s: no kubeconfig", c.Process().Name)
	}
	return proc.Start(c.Process())
}

// Stop ends the controller: SIGTERM, which it answers by stopping its
// control loops and exiting, then SIGKILL after ten seconds.
func (c Controller) Stop() error { return proc.Stop(c.Process(), 10*time.Second) }
