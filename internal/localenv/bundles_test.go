package localenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/marina-platform/marina/internal/enginecrds"
	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/controlplane/engine"
)

func TestMarinaCRDBundleIsReproducible(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, bundleSources[0].dir)
	first, err := TarCRDs(dir)
	if err != nil {
		t.Fatal(err)
	}
	second, err := TarCRDs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("packing %s twice gave different bytes, so its sha256 would change", dir)
	}
}

// TestKarmadaBundlesArePublishedAsReleased: the mirror serves the engine's
// own bundles byte for byte, each with its sha256, where a ControlPlane's
// spec.crds.http.url points.
func TestKarmadaBundlesArePublishedAsReleased(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range engine.Releases() {
		testenv.EngineBundle(t, r.Checked) // skips without them, fails in CI
	}
	dir := t.TempDir()
	if err := PublishKarmadaBundles(context.Background(), root, dir); err != nil {
		t.Fatal(err)
	}
	for _, r := range engine.Releases() {
		src, err := enginecrds.Find(root, r.Checked)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(src.Path)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(KarmadaCRDBundle(r.Checked)))
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the engine's bundle %s", p, src.Path)
		}
		line, err := os.ReadFile(p + ".sha256")
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(want)
		if f := strings.Fields(string(line)); len(f) != 2 || f[0] != hex.EncodeToString(sum[:]) || f[1] != "crds.tar.gz" {
			t.Errorf("%s.sha256 is %q", p, line)
		}
	}
}
