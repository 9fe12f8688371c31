// Package enginecrds finds the engine's released CRD bundles (Karmada's
// crds.tar.gz of each supported release) on this machine, for the local
// environment's HTTP mirror and for tests. They are data, never part of
// Marina's source: they come from a folder laid out as <version>/crds.tar.gz
// with a <version>/crds.tar.gz.sha256 beside each, in this order:
//
//  1. $MARINA_KARMADA_CRDS_DIR, when set;
//  2. the project's shared folder next to the repository (../shared/karmada),
//     which the project's machines and CI have;
//  3. the cache, ~/.cache/marina/karmada (or $MARINA_CACHE_DIR/karmada),
//     which Download fills from the engine's GitHub releases on a machine
//     that is online.
package enginecrds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/marina-platform/marina/operators/controlplane/engine"
)

// DirEnv names a folder of bundles that wins over every other place.
const DirEnv = "MARINA_KARMADA_CRDS_DIR"

// Bundle is one release's CRD bundle on disk.
type Bundle struct {
	Version string
	// Path of crds.tar.gz.
	Path string
	// SHA256 of its bytes, as its .sha256 file says and its bytes confirm.
	SHA256 string
}

// Dirs are the folders searched for bundles, in order, for repoRoot (the
// folder of Marina's go.mod).
func Dirs(repoRoot string) []string {
	var dirs []string
	if d := os.Getenv(DirEnv); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, filepath.Join(filepath.Dir(repoRoot), "shared", "karmada"), CacheDir())
	return dirs
}

// CacheDir is where Download keeps bundles.
func CacheDir() string {
	if d := os.Getenv("MARINA_CACHE_DIR"); d != "" {
		return filepath.Join(d, "karmada")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "marina", "karmada")
}

// ErrNotFound: no folder has the release's bundle.
var ErrNotFound = errors.New("engine CRD bundle not found")

// Find returns the bundle of version from the first folder that has it,
// checked against its sha256 file.
func Find(repoRoot, version string) (Bundle, error) {
	dirs := Dirs(repoRoot)
	for _, d := range dirs {
		p := filepath.Join(d, version, "crds.tar.gz")
		if _, err := os.Stat(p); err != nil {
			continue
		}
		return check(version, p)
	}
	return Bundle{}, fmt.Errorf("%w: no %s/crds.tar.gz in %s; set %s to a folder of bundles, or run on a machine that reaches github.com so that it is downloaded into %s",
		ErrNotFound, version, strings.Join(dirs, ", "), DirEnv, CacheDir())
}

// check reads a bundle and its sha256 file and verifies one against the
// other, so that a truncated copy is never published.
func check(version, path string) (Bundle, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Bundle{}, err
	}
	got := sha256.Sum256(data)
	b := Bundle{Version: version, Path: path, SHA256: hex.EncodeToString(got[:])}
	line, err := os.ReadFile(path + ".sha256")
	if err != nil {
		return Bundle{}, fmt.Errorf("engine CRD bundle %s has no checksum file: %w", path, err)
	}
	if f := strings.Fields(string(line)); len(f) == 0 || f[0] != b.SHA256 {
		return Bundle{}, fmt.Errorf("engine CRD bundle %s has sha256 %s, but %s.sha256 says %q", path, b.SHA256, path, strings.TrimSpace(string(line)))
	}
	return b, nil
}

// Download fetches a release's bundle from the engine's releases into the
// cache (once), writing its sha256 file beside it: the fallback for a
// machine without the shared folder. The engine publishes no checksum of
// the asset, so the first download is trusted and later runs use the
// cached copy.
func Download(ctx context.Context, version string) (Bundle, error) {
	dir := filepath.Join(CacheDir(), version)
	p := filepath.Join(dir, "crds.tar.gz")
	if b, err := check(version, p); err == nil {
		return b, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, engine.ReleaseCRDsURL(version), nil)
	if err != nil {
		return Bundle{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Bundle{}, fmt.Errorf("download the engine's CRD bundle %s: %w", version, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return Bundle{}, fmt.Errorf("download the engine's CRD bundle %s from %s: HTTP %s", version, engine.ReleaseCRDsURL(version), resp.Status)
	}
	const limit = 64 << 20
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return Bundle{}, fmt.Errorf("download the engine's CRD bundle %s: %w", version, err)
	}
	if len(data) > limit {
		return Bundle{}, fmt.Errorf("download the engine's CRD bundle %s: larger than %d bytes", version, limit)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Bundle{}, err
	}
	sum := sha256.Sum256(data)
	if err := os.WriteFile(p+".tmp", data, 0o644); err != nil {
		return Bundle{}, err
	}
	if err := os.WriteFile(p+".sha256", []byte(hex.EncodeToString(sum[:])+"  crds.tar.gz\n"), 0o644); err != nil {
		return Bundle{}, err
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return Bundle{}, err
	}
	return check(version, p)
}

// Required says whether tests must find the bundles rather than skip
// without them: in CI, where the project's shared folder is always beside
// the clone, a missing bundle is a broken set-up, not a reason to skip.
func Required() bool { return os.Getenv("CI") != "" }

// Ensure finds a release's bundle, downloading it when no folder has it.
func Ensure(ctx context.Context, repoRoot, version string) (Bundle, error) {
	b, err := Find(repoRoot, version)
	if !errors.Is(err, ErrNotFound) {
		return b, err
	}
	b, derr := Download(ctx, version)
	if derr != nil {
		return Bundle{}, fmt.Errorf("%v; the download failed too: %w", err, derr)
	}
	return b, nil
}
