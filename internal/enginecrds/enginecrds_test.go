package enginecrds

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindChecksTheChecksumFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(DirEnv, dir)
	t.Setenv("MARINA_CACHE_DIR", t.TempDir())
	root := t.TempDir() // no shared folder beside it

	if _, err := Find(root, "v1.16.8"); err == nil || !strings.Contains(err.Error(), "no v1.16.8/crds.tar.gz") {
		t.Fatalf("without a bundle: err = %v", err)
	}
	p := filepath.Join(dir, "v1.16.8", "crds.tar.gz")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("bundle"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+".sha256", []byte(strings.Repeat("0", 64)+"  crds.tar.gz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Find(root, "v1.16.8"); err == nil || !strings.Contains(err.Error(), "but") {
		t.Fatalf("with a wrong checksum file: err = %v", err)
	}
	const sum = "1e6ed65d77d6364eeaed5a745ba5c4985ae2b700dd85d7cf7f027bdf294a33fc" // of "bundle"
	if err := os.WriteFile(p+".sha256", []byte(sum+"  crds.tar.gz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := Find(root, "v1.16.8")
	if err != nil || b.SHA256 != sum || b.Path != p {
		t.Fatalf("Find = %+v, %v", b, err)
	}
}
