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

	"github.com/marina-platform/marina/internal/enginecrds"
	"github.com/marina-platform/marina/internal/localenv/proc"
	"github.com/marina-platform/marina/operators/controlplane/engine"
)

// BundlePort is where the CRD-bundle server listens in the shared
// namespace.
const BundlePort = 8080

// BundleURL is the address of a published bundle, reachable from every
// node and pod of the environment (and from the host through the bridge).
func BundleURL(name string) string {
	return "http://" + net.JoinHostPort(SharedHost.IP.String(), strconv.Itoa(BundlePort)) + "/" + name
}

// KarmadaVersion is the engine release the environment's ControlPlanes
// run: the oldest supported one, so that tests can upgrade from it.
var KarmadaVersion = engine.Releases()[0].Checked

// KarmadaCRDBundle is where the mirror publishes a release's CRD bundle,
// laid out as the engine's releases are: karmada/<version>/crds.tar.gz.
func KarmadaCRDBundle(version string) string { return "karmada/" + version + "/crds.tar.gz" }

// bundleSources are the folders of Marina's tree published as CRD bundles:
// name of the tarball, folder it packs. The tarball holds the folder's YAML
// files under crds/, the layout the controlplane operator unpacks.
var bundleSources = []struct{ name, dir string }{
	{"marina-crds.tar.gz", "charts/marina/crds"},
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
		if err := publish(e.bundleDir(), b.name, data); err != nil {
			return err
		}
	}
	if err := PublishKarmadaBundles(ctx, e.opts.RepoRoot, e.bundleDir()); err != nil {
		return err
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

// PublishKarmadaBundles copies the engine's own CRD bundle of every
// supported release into dir, byte for byte, as an air-gapped site's
// mirror holds them (see package enginecrds for where they come from).
func PublishKarmadaBundles(ctx context.Context, repoRoot, dir string) error {
	for _, r := range engine.Releases() {
		b, err := enginecrds.Ensure(ctx, repoRoot, r.Checked)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(b.Path)
		if err != nil {
			return err
		}
		if err := publish(dir, KarmadaCRDBundle(r.Checked), data); err != nil {
			return err
		}
	}
	return nil
}

// publish writes a bundle and, beside it, its sha256 in the sha256sum
// format mirrors commonly publish.
func publish(dir, name string, data []byte) error {
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return err
	}
	line := hex.EncodeToString(sum[:]) + "  " + filepath.Base(name) + "\n"
	return os.WriteFile(p+".sha256", []byte(line), 0o644)
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
