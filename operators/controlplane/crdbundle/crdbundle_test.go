package crdbundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func crdYAML(plural, group string) string {
	return `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ` + plural + `.` + group + `
spec:
  group: ` + group + `
  names: {kind: Thing, listKind: ThingList, plural: ` + plural + `, singular: thing}
  scope: Namespaced
  versions:
    - name: v1alpha1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`
}

// A kustomize patch, as release bundles carry next to the bases.
const patchYAML = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: things.example.com
spec:
  conversion:
    strategy: Webhook
`

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		data    func(t *testing.T) []byte
		want    []string
		wantErr string
	}{
		{"multi-document YAML", func(*testing.T) []byte {
			return []byte(crdYAML("things", "example.com") + "---\n" + crdYAML("widgets", "example.com"))
		}, []string{"things.example.com", "widgets.example.com"}, ""},
		{"release tar.gz with kustomize files", func(t *testing.T) []byte {
			return tarGz(t, map[string]string{
				"crds/bases/things.yaml":        crdYAML("things", "example.com"),
				"crds/bases/widgets.yaml":       crdYAML("widgets", "example.com"),
				"crds/patches/things.yaml":      patchYAML,
				"crds/kustomization.yaml":       "resources: [bases/things.yaml]\n",
				"crds/README.md":                "not YAML",
				"crds/bases/policy.example.yml": crdYAML("policies", "policy.example.com"),
			})
		}, []string{"policies.policy.example.com", "things.example.com", "widgets.example.com"}, ""},
		{"another kind", func(*testing.T) []byte {
			return []byte(crdYAML("things", "example.com") + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
		}, nil, "document 2 is a v1 ConfigMap, not an apiextensions.k8s.io/v1 CustomResourceDefinition"},
		{"duplicate", func(*testing.T) []byte {
			return []byte(crdYAML("things", "example.com") + "---\n" + crdYAML("things", "example.com"))
		}, nil, "appears twice"},
		{"patch of a CRD the bundle lacks", func(*testing.T) []byte {
			return []byte(crdYAML("widgets", "example.com") + "---\n" + patchYAML)
		}, nil, "patches CustomResourceDefinition things.example.com, which the bundle does not have"},
		{"no CRDs", func(*testing.T) []byte { return []byte("# nothing\n") }, nil, "no CustomResourceDefinition"},
		{"not YAML", func(*testing.T) []byte { return []byte("{{{") }, nil, "document 1"},
		{"broken gzip", func(*testing.T) []byte { return []byte{0x1f, 0x8b, 0, 1} }, nil, "gzip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Parse(tc.data(t), 1<<20)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, c := range b.CRDs {
				names = append(names, c.Name)
				if c.Kind != "CustomResourceDefinition" || c.APIVersion != "apiextensions.k8s.io/v1" {
					t.Errorf("%s: kind %q apiVersion %q", c.Name, c.Kind, c.APIVersion)
				}
			}
			if strings.Join(names, ",") != strings.Join(tc.want, ",") {
				t.Errorf("CRDs %v, want %v", names, tc.want)
			}
		})
	}
}

// TestFetch serves bundles from a local HTTP server: checksums, caching per
// policy, retries of passing failures only, and a proxy.
func TestFetch(t *testing.T) {
	bundle := []byte(crdYAML("things", "example.com"))
	sum := sha256.Sum256(bundle)
	digest := hex.EncodeToString(sum[:])

	var requests, flaky atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		switch r.URL.Path {
		case "/crds.yaml":
			_, _ = w.Write(bundle)
		case "/flaky.yaml":
			if flaky.Add(1) < 3 {
				http.Error(w, "try again", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write(bundle)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	newFetcher := func() *Fetcher {
		f := NewFetcher()
		f.Backoff = 10 * time.Millisecond
		f.Timeout = 5 * time.Second
		return f
	}
	ctx := context.Background()

	t.Run("checksum verified and cached", func(t *testing.T) {
		f := newFetcher()
		requests.Store(0)
		for range 3 {
			b, err := f.Fetch(ctx, Source{URL: srv.URL + "/crds.yaml", SHA256: digest}, true)
			if err != nil {
				t.Fatal(err)
			}
			if b.SHA256 != digest || len(b.CRDs) != 1 {
				t.Fatalf("bundle %+v", b)
			}
		}
		if n := requests.Load(); n != 1 {
			t.Errorf("%d requests for three fetches with IfNotPresent, want 1", n)
		}
		if _, err := f.Fetch(ctx, Source{URL: srv.URL + "/crds.yaml", SHA256: digest}, false); err != nil {
			t.Fatal(err)
		}
		if n := requests.Load(); n != 2 {
			t.Errorf("%d requests after a fetch with Always, want 2", n)
		}
	})

	t.Run("a document: checksum verified, content not read, kept", func(t *testing.T) {
		f := newFetcher()
		requests.Store(0)
		for range 2 {
			data, err := f.FetchDocument(ctx, Source{URL: srv.URL + "/crds.yaml", SHA256: digest})
			if err != nil || string(data) != string(bundle) {
				t.Fatalf("FetchDocument = %q, %v", data, err)
			}
		}
		if n := requests.Load(); n != 1 {
			t.Errorf("%d requests for two fetches of one URL and checksum, want 1", n)
		}
		if _, err := f.FetchDocument(ctx, Source{URL: srv.URL + "/crds.yaml", SHA256: strings.Repeat("0", 64)}); !errors.Is(err, ErrChecksum) {
			t.Errorf("FetchDocument with a wrong checksum = %v, want ErrChecksum", err)
		}
		if _, err := f.FetchDocument(ctx, Source{URL: srv.URL + "/crds.yaml"}); !errors.Is(err, ErrChecksum) {
			t.Errorf("FetchDocument without a checksum = %v, want ErrChecksum", err)
		}
	})

	t.Run("checksum mismatch", func(t *testing.T) {
		_, err := newFetcher().Fetch(ctx, Source{URL: srv.URL + "/crds.yaml", SHA256: strings.Repeat("0", 64)}, true)
		if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), digest) {
			t.Fatalf("err = %v, want a checksum mismatch naming the actual digest", err)
		}
	})

	t.Run("not found is not retried", func(t *testing.T) {
		requests.Store(0)
		_, err := newFetcher().Fetch(ctx, Source{URL: srv.URL + "/missing.yaml"}, true)
		if !errors.Is(err, ErrDownload) || !strings.Contains(err.Error(), "404") {
			t.Fatalf("err = %v, want a download error with the status", err)
		}
		if n := requests.Load(); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})

	t.Run("server errors are retried", func(t *testing.T) {
		b, err := newFetcher().Fetch(ctx, Source{URL: srv.URL + "/flaky.yaml"}, true)
		if err != nil || len(b.CRDs) != 1 {
			t.Fatalf("bundle %+v, err %v; want success on the third attempt", b, err)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		l := httptest.NewServer(http.NotFoundHandler())
		url := l.URL
		l.Close()
		_, err := newFetcher().Fetch(ctx, Source{URL: url + "/crds.yaml"}, true)
		if !errors.Is(err, ErrDownload) || !strings.Contains(err.Error(), "after") && !strings.Contains(err.Error(), "refused") {
			t.Fatalf("err = %v, want a download error", err)
		}
	})

	t.Run("through a proxy", func(t *testing.T) {
		var proxied atomic.Int32
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			proxied.Add(1)
			// A forward proxy receives the absolute URL.
			if !strings.HasPrefix(r.RequestURI, srv.URL) {
				http.Error(w, "not a proxy request: "+r.RequestURI, http.StatusBadRequest)
				return
			}
			_, _ = w.Write(bundle)
		}))
		defer proxy.Close()
		if _, err := newFetcher().Fetch(ctx, Source{URL: srv.URL + "/crds.yaml", SHA256: digest, ProxyURL: proxy.URL}, true); err != nil {
			t.Fatal(err)
		}
		if proxied.Load() != 1 {
			t.Errorf("%d requests through the proxy, want 1", proxied.Load())
		}
	})

	t.Run("too large", func(t *testing.T) {
		f := newFetcher()
		f.MaxBytes = 100
		_, err := f.Fetch(ctx, Source{URL: srv.URL + "/crds.yaml"}, true)
		if !errors.Is(err, ErrDownload) || !strings.Contains(err.Error(), "larger than 100 bytes") {
			t.Fatalf("err = %v", err)
		}
	})
}
