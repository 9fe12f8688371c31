package localenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/marina-platform/marina/internal/localenv/proc"
)

// BundlePort is where the CRD-bundle server listens in the shared
// namespace.
const BundlePort = 8080

// BundleURL is the address of a published bundle, reachable from every
// node and pod of the environment (and from the host through the bridge).
func BundleURL(name string) string {
	return "http://" + net.JoinHostPort(SharedHost.IP.String(), strconv.Itoa(BundlePort)) + "/" + name
}

// KarmadaCRDVersion is the Karmada release whose policy, work, config and
// cluster APIs the local Karmada CRD bundle (hack/crd-bundles/karmada, written
// for Marina) follows; it is published as karmada-crds-<version>.tar.gz.
const KarmadaCRDVersion = "v1.16.0"

// bundleSources are the folders of Marina's tree published as CRD bundles:
// name of the tarball, folder it packs. The tarball holds the folder's YAML
// files under crds/, the layout the controlplane operator unpacks.
var bundleSources = []struct{ name, dir string }{
	{"marina-crds.tar.gz", "charts/marina/crds"},
	{"karmada-crds-" + KarmadaCRDVersion + ".tar.gz", "hack/crd-bundles/karmada/crds"},
}

func (e *Env) bundleDir() string { return filepath.Join(e.opts.Dir, "shared", "bundles") }

// bundleServer is the HTTP server that publishes the bundles: the stand-in
// for an air-gapped site's HTTP mirror.
func (e *Env) bundleServer() proc.Spec {
	return proc.Spec{
		Name: "crd-bundle-server", Path: filepath.Join(e.opts.Dir, "bin", "fileserver"), NetNS: SharedHost.Name,
		Dir:  filepath.Join(e.opts.Dir, "shared"),
		Args: []string{"--listen", net.JoinHostPort(SharedHost.IP.String(), strconv.Itoa(BundlePort)), "--dir", e.bundleDir()},
	}
}

// startBundleServer writes the bundles with their sha256 files and starts
// the server.
func (e *Env) startBundleServer(ctx context.Context) error {
	if err := os.MkdirAll(e.bundleDir(), 0o755); err != nil {
		return err
	}
	for _, b := range bundleSources {
		data, err := TarCRDs(filepath.Join(e.opts.RepoRoot, b.dir))
		if err != nil {
			return fmt.Errorf("bundle %s: %w", b.name, err)
		}
		sum := sha256.Sum256(data)
		if err := os.WriteFile(filepath.Join(e.bundleDir(), b.name), data, 0o644); err != nil {
			return err
		}
		// The sha256sum format, which mirrors commonly publish.
		line := hex.EncodeToString(sum[:]) + "  " + b.name + "\n"
		if err := os.WriteFile(filepath.Join(e.bundleDir(), b.name+".sha256"), []byte(line), 0o644); err != nil {
			return err
		}
	}
	s := e.bundleServer()
	if err := goBuild(ctx, e.opts.RepoRoot, "./hack/fileserver", "", s.Path); err != nil {
		return err
	}
	if _, err := proc.Start(s); err != nil {
		return err
	}
	return waitHTTP(ctx, SharedHost.Name, BundleURL(bundleSources[0].name+".sha256"))
}

// TarCRDs packs the YAML files of dir under crds/ into a gzipped tarball,
// byte for byte the same for the same files, so its checksum is stable.
func TarCRDs(dir string) ([]byte, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no YAML files in %s", dir)
	}
	sort.Strings(files)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "crds/", Mode: 0o755}); err != nil {
		return nil, err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(dir, f)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "crds/" + filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
