package images

import (
	"archive/tar"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestTarballHoldsTheFilesAndEntrypoint(t *testing.T) {
	file := filepath.Join(t.TempDir(), "img.tar")
	spec := Spec{
		Ref:        Registry + "/test/hello:v1",
		Files:      []File{{Path: "/usr/local/bin/hello", Data: []byte("#!binary"), Mode: 0o755}, {Path: "/etc/hello.conf", Data: []byte("x")}},
		Entrypoint: []string{"/usr/local/bin/hello", "--serve"},
		User:       "65532:65532",
	}
	if err := WriteTarball(spec, file); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(spec.Ref)
	img, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Config.Entrypoint; len(got) != 2 || got[0] != "/usr/local/bin/hello" {
		t.Errorf("entrypoint %v", got)
	}
	if cfg.Config.User != "65532:65532" || cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("config user %q os %q arch %q", cfg.Config.User, cfg.OS, cfg.Architecture)
	}
	tr := tar.NewReader(mutate.Extract(img))
	found := map[string]int64{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		found[h.Name] = h.Mode
	}
	if found["usr/local/bin/hello"] != 0o755 || found["etc/hello.conf"] != 0o644 {
		t.Errorf("files in image: %v", found)
	}
}

func TestSameInputsGiveTheSameDigest(t *testing.T) {
	spec := Spec{Ref: Registry + "/test/hello:v1", Files: []File{{Path: "/b", Data: []byte("b")}, {Path: "/a/x", Data: []byte("a")}}}
	one, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Files[0], spec.Files[1] = spec.Files[1], spec.Files[0]
	two, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := one.Digest()
	d2, _ := two.Digest()
	if d1 != d2 {
		t.Errorf("digests differ: %s vs %s; a second `up` would re-import every image", d1, d2)
	}
}

func TestReferencesOutsideTheLocalRegistryAreRefused(t *testing.T) {
	err := WriteTarball(Spec{Ref: "docker.io/library/pause:3.10"}, filepath.Join(t.TempDir(), "x.tar"))
	if err == nil {
		t.Fatal("want an error: such an image could be pulled from a registry")
	}
}
