package localenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/marina-platform/marina/internal/localenv/gomod"
	"github.com/marina-platform/marina/internal/localenv/images"
	"github.com/marina-platform/marina/internal/localenv/localpath"
	"github.com/marina-platform/marina/internal/localenv/node"
)

// nonRoot is the user the images of Marina's own programs run as; the chart
// asks for runAsNonRoot, which needs a numeric user in the image.
const nonRoot = "65532:65532"

// localImage is one image every node gets: either a Go package of Marina's
// tree, built here, or a binary from the bin folder (built from source by
// the Makefile).
type localImage struct {
	ref string
	// pkg is a package to build; bin a binary in BinDir.
	pkg, bin string
	// path is where the binary sits in the image and what it runs.
	path string
	user string
}

// Versions are the pinned versions of the components whose images the
// environment builds; they name image tags and come from the tools modules'
// go.mod files, where the Makefile reads them too.
type Versions struct {
	Kubernetes, Etcd, CoreDNS, CertManager, Vault, LocalPath string
}

// ReadVersions reads the pins from the tools modules under repoRoot.
func ReadVersions(repoRoot string) (Versions, error) {
	var v Versions
	for _, p := range []struct {
		dir, module string
		into        *string
	}{
		{"kube", "k8s.io/kubernetes", &v.Kubernetes},
		{"etcd", "go.etcd.io/etcd/server/v3", &v.Etcd},
		{"coredns", "github.com/coredns/coredns", &v.CoreDNS},
		{"cert-manager", "github.com/cert-manager/cert-manager", &v.CertManager},
		{"vault", "github.com/hashicorp/vault", &v.Vault},
		{"local-path-provisioner", "github.com/rancher/local-path-provisioner", &v.LocalPath},
	} {
		ver, err := gomod.Required(filepath.Join(repoRoot, "hack", "tools", p.dir, "go.mod"), p.module)
		if err != nil {
			return v, err
		}
		*p.into = ver
	}
	return v, nil
}

// Image references of the environment. Component images carry the pinned
// version; Marina's operators carry a tag derived from their binaries, so a
// rebuilt operator is a new tag and `helm upgrade` rolls it out.
func (v Versions) etcdImage() string    { return images.Registry + "/etcd:" + v.Etcd }
func (v Versions) coreDNSImage() string { return images.Registry + "/coredns:" + v.CoreDNS }
func (v Versions) localPathImage() string {
	return images.Registry + "/local-path-provisioner:" + v.LocalPath
}
func (v Versions) kubeImage(component string) string {
	return images.Registry + "/" + component + ":" + v.Kubernetes
}

// OperatorImageRepository is the repository of an operator's image:
// <images.Registry>/marina-<operator>, as charts/marina expects it.
func OperatorImageRepository(operator string) string { return "marina-" + operator }

// Operators are the operators the environment builds and runs, each under
// operators/<name>: those charts/marina installs by default.
var Operators = []string{"controlplane", "register", "sync"}

func (e *Env) imageList(v Versions, operatorTag string) []localImage {
	list := []localImage{
		{ref: SandboxImage, pkg: "./hack/pause", path: "/pause"},
		{ref: EchoImage, pkg: "./hack/echoserver", path: "/echoserver", user: nonRoot},
		{ref: v.etcdImage(), bin: "etcd", path: "/usr/local/bin/etcd"},
		{ref: v.coreDNSImage(), bin: "coredns", path: "/coredns"},
		{ref: v.localPathImage(), bin: "local-path-provisioner", path: "/local-path-provisioner", user: nonRoot},
		// Root: it makes and removes folders in the node's root-owned
		// storage folder.
		{ref: VolumeHelperImage, pkg: "./hack/volume-helper", path: localpath.HelperPath},
	}
	for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		list = append(list, localImage{ref: v.kubeImage(c), bin: c, path: "/usr/local/bin/" + c})
	}
	for _, op := range Operators {
		list = append(list, localImage{
			ref: images.Registry + "/" + OperatorImageRepository(op) + ":" + operatorTag,
			pkg: "./operators/" + op, path: "/manager", user: nonRoot,
		})
	}
	// The KMS plugin ships with the operators and carries their tag.
	list = append(list, localImage{ref: KMSVaultImage(operatorTag), pkg: kmsVaultPkg, path: "/kms-vault", user: nonRoot})
	return list
}

const kmsVaultPkg = "./cmd/kms-vault"

// KMSVaultImage is the Vault KMS plugin's image for a tag of Marina's.
func KMSVaultImage(tag string) string { return images.Registry + "/kms-vault:" + tag }

// shipped says whether a package is one of Marina's released programs,
// which carry the source version and make up the operators' tag.
func shipped(pkg string) bool { return strings.HasPrefix(pkg, "./operators/") || pkg == kmsVaultPkg }

// VolumeHelperImage makes and removes the folders of the storage
// provisioner's volumes, in its helper pods.
const VolumeHelperImage = images.Registry + "/volume-helper:v1"

// EchoImage answers HTTP with its host name; the smoke tests run it.
const EchoImage = images.Registry + "/echoserver:v1"

// builtImage is an image tarball and the key of what it was built from.
type builtImage struct {
	ref, tarball, key string
}

// buildImages builds Marina's programs and packs every image into a
// tarball. A tarball whose inputs did not change is reused, so a second
// `up` costs only the Go builds (which Go caches).
func (e *Env) buildImages(ctx context.Context, v Versions) (built []builtImage, operatorTag string, err error) {
	dir := filepath.Join(e.opts.Dir, "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	// Marina's programs first: the operators' tag is the hash of their
	// binaries. Go leaves an up-to-date output file alone, so this costs
	// little on a second run.
	version := sourceVersion(ctx, e.opts.RepoRoot)
	opHash := sha256.New()
	sources := map[string]string{}
	for _, img := range e.imageList(v, "") {
		if img.pkg == "" {
			continue
		}
		out := filepath.Join(dir, strings.TrimPrefix(strings.ReplaceAll(img.pkg, "/", "-"), ".-"))
		ldflags := ""
		if shipped(img.pkg) {
			ldflags = "-X github.com/marina-platform/marina/internal/version.Version=" + version
		}
		if err := goBuild(ctx, e.opts.RepoRoot, img.pkg, ldflags, out); err != nil {
			return nil, "", err
		}
		if ldflags != "" {
			if err := hashFile(opHash, out); err != nil {
				return nil, "", err
			}
		}
		sources[img.pkg] = out
	}
	operatorTag = "dev-" + hex.EncodeToString(opHash.Sum(nil))[:12]

	for _, img := range e.imageList(v, operatorTag) {
		src := filepath.Join(e.opts.BinDir, img.bin)
		if img.pkg != "" {
			src = sources[img.pkg]
		}
		h := sha256.New()
		fmt.Fprintf(h, "%s\n%s\n%s\n", img.ref, img.path, img.user)
		if err := hashFile(h, src); err != nil {
			return nil, "", fmt.Errorf("image %s: %w (run `make up`, which builds it)", img.ref, err)
		}
		key := hex.EncodeToString(h.Sum(nil))
		tb := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(img.ref)+".tar")
		if old, err := os.ReadFile(tb + ".key"); err != nil || string(old) != key {
			spec := images.Spec{Ref: img.ref, Files: []images.File{{Path: img.path, Source: src, Mode: 0o755}}, Entrypoint: []string{img.path}, User: img.user}
			if err := images.WriteTarball(spec, tb); err != nil {
				return nil, "", err
			}
			if err := os.WriteFile(tb+".key", []byte(key), 0o644); err != nil {
				return nil, "", err
			}
		}
		built = append(built, builtImage{ref: img.ref, tarball: tb, key: key})
	}
	return built, operatorTag, nil
}

// EngineImagesEnv names a folder of image tarballs (as `ctr images import`
// takes them) that `up` imports into every node next to its own images:
// the engine's images, which the environment cannot build or pull. Without
// it, ControlPlanes run with the engine's components off; with it, the
// e2e suite's real-engine tests run too.
const EngineImagesEnv = "MARINA_ENGINE_IMAGES"

// engineImages are the tarballs of EngineImagesEnv's folder, keyed by their
// content so that a changed tarball is imported again.
func engineImages() ([]builtImage, error) {
	dir := os.Getenv(EngineImagesEnv)
	if dir == "" {
		return nil, nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s=%s holds no image tarballs (*.tar)", EngineImagesEnv, dir)
	}
	var out []builtImage
	for _, f := range files {
		h := sha256.New()
		if err := hashFile(h, f); err != nil {
			return nil, err
		}
		out = append(out, builtImage{ref: filepath.Base(f), tarball: f, key: hex.EncodeToString(h.Sum(nil))})
	}
	return out, nil
}

// sourceVersion names the source tree the way the Makefile's VERSION does.
func sourceVersion(ctx context.Context, repoRoot string) string {
	cmd := exec.CommandContext(ctx, "git", "describe", "--tags", "--always", "--dirty")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		return "dev"
	}
	return strings.TrimSpace(string(out))
}

func goBuild(ctx context.Context, repoRoot, pkg, ldflags, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w "+ldflags, "-o", out, pkg)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", pkg, err, output)
	}
	return nil
}

func hashFile(h io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(h, f)
	return err
}

// importImages loads into the node the images it does not have yet. What a
// node holds is recorded next to it; its folder goes with `down`, and so
// does the record.
func importImages(ctx context.Context, n node.Node, built []builtImage) error {
	record := filepath.Join(n.Dir, "images.imported")
	data, _ := os.ReadFile(record)
	have := strings.Fields(string(data))
	var missing []string
	var keys []string
	for _, b := range built {
		keys = append(keys, b.key)
		if !slices.Contains(have, b.key) {
			missing = append(missing, b.tarball)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := n.ImportImages(ctx, missing...); err != nil {
		return err
	}
	return os.WriteFile(record, []byte(strings.Join(keys, "\n")+"\n"), 0o644)
}
