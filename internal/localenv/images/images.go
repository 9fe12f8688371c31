// Package images builds the local environment's container images without a
// Docker engine or a registry: one layer of static binaries on an empty
// base, written as an image tarball that `ctr images import` loads into
// each node's containerd.
package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Registry prefixes every local image. A name with a dot in its first part
// is a registry host to the CRI, which would otherwise rewrite "marina/x"
// to docker.io/marina/x.
const Registry = "marina.local"

// File is one file in an image.
type File struct {
	// Path inside the image, absolute.
	Path string
	// Source is a file on disk; Data is used when Source is empty.
	Source string
	Data   []byte
	Mode   int64
}

// Spec is one image.
type Spec struct {
	// Ref is the full reference, such as marina.local/pause:v1.
	Ref        string
	Files      []File
	Entrypoint []string
	// User runs the entrypoint, such as 65532:65532; root when empty.
	User string
	Env  []string
}

// Build assembles the image.
func Build(s Spec) (v1.Image, error) {
	layerTar, err := tarFiles(s.Files)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.Ref, err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("image %s: layer: %w", s.Ref, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Entrypoint = s.Entrypoint
	cfg.Config.User = s.User
	cfg.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, s.Env...)
	return mutate.ConfigFile(img, cfg)
}

// WriteTarball builds the image and writes it to file, ready for
// `ctr images import`.
func WriteTarball(s Spec, file string) error {
	ref, err := name.NewTag(s.Ref, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", s.Ref, err)
	}
	if !strings.HasPrefix(ref.Context().RegistryStr(), Registry) {
		return fmt.Errorf("image reference %q must start with %s/ so that nothing tries to pull it", s.Ref, Registry)
	}
	img, err := Build(s)
	if err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		return fmt.Errorf("write image %s: %w", s.Ref, err)
	}
	return os.Rename(tmp, file)
}

// tarFiles makes a layer holding files and their parent folders, in a
// stable order so the same inputs give the same digest.
func tarFiles(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	for _, f := range sorted {
		if !path.IsAbs(f.Path) {
			return nil, fmt.Errorf("file path %q is not absolute", f.Path)
		}
		var parents []string
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755}); err != nil {
				return nil, err
			}
		}
		data := f.Data
		if f.Source != "" {
			var err error
			if data, err = os.ReadFile(f.Source); err != nil {
				return nil, err
			}
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.Path, "/"), Mode: mode, Size: int64(len(data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
