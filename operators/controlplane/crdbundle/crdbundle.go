// Package crdbundle downloads the engine's CustomResourceDefinitions from an
// HTTP mirror: a tar.gz of YAML files (as the engine's releases publish
// them) or one multi-document YAML. Downloads are verified against an
// expected SHA-256, may go through a proxy, are retried on transient
// failures and cached, so several control planes on one version share one
// download and one parsed copy.
package crdbundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Source is where a bundle comes from.
type Source struct {
	// URL of the bundle, http or https.
	URL string
	// SHA256 is the expected lowercase hex digest of the downloaded bytes;
	// empty skips the check.
	SHA256 string
	// ProxyURL is an HTTP proxy to download through; empty goes direct.
	ProxyURL string
}

// Bundle is a parsed download.
type Bundle struct {
	// SHA256 of the downloaded bytes.
	SHA256 string
	// CRDs in the bundle, sorted by name, as the bundle has them: before
	// any patch. Resolve returns them patched.
	CRDs []*apiextensionsv1.CustomResourceDefinition
	// Patches are the bundle's partial CRDs, by file name: the engine's
	// release bundle enables conversion through its webhook this way
	// (patches/webhook_in_resourcebindings.yaml), with placeholders an
	// installer fills in.
	Patches []Patch
}

// Patch is a partial CRD that a bundle applies to one of its CRDs as a
// strategic merge patch, as kustomize and the engine's installers do.
type Patch struct {
	// File is where the patch is in the bundle.
	File string
	// CRD is the name of the CRD it patches.
	CRD string
	// Raw is the file's document, placeholders and all.
	Raw []byte
}

// The errors Fetch returns, so that callers can tell a person what to fix.
var (
	// ErrDownload: the URL could not be fetched (network, HTTP status).
	ErrDownload = errors.New("download failed")
	// ErrChecksum: the bytes do not match the expected SHA-256.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrContent: the bytes are not a bundle of CRDs.
	ErrContent = errors.New("invalid bundle")
)

// Fetcher downloads and caches bundles. The zero value is not usable; use
// NewFetcher.
type Fetcher struct {
	// Attempts per Fetch for transient failures (network errors, 5xx).
	Attempts int
	// Backoff before the first retry; it doubles for each further retry.
	Backoff time.Duration
	// Timeout of one attempt.
	Timeout time.Duration
	// MaxBytes bounds a download and a bundle's unpacked size.
	MaxBytes int64

	// OnChange, when set, is called with the waiter of every Start whose
	// download finished with a new result (see Start).
	OnChange func(waiter string)

	mu         sync.Mutex
	cache      map[cacheKey]*Bundle
	documents  map[cacheKey][]byte
	downloads  map[cacheKey]*download
	transports map[string]*http.Transport
}

type cacheKey struct{ url, sha256 string }

// NewFetcher returns a Fetcher with defaults suited to a reconciler: three
// attempts a second apart (then two), 30 s each, 64 MiB at most.
func NewFetcher() *Fetcher {
	return &Fetcher{
		Attempts: 3, Backoff: time.Second, Timeout: 30 * time.Second, MaxBytes: 64 << 20,
		cache:      map[cacheKey]*Bundle{},
		documents:  map[cacheKey][]byte{},
		downloads:  map[cacheKey]*download{},
		transports: map[string]*http.Transport{},
	}
}

// Fetch returns the bundle at src. With cached true, a bundle downloaded
// before for the same URL and checksum is returned without a request
// (policy IfNotPresent); otherwise it is downloaded again (Always).
// Errors wrap ErrDownload, ErrChecksum or ErrContent.
func (f *Fetcher) Fetch(ctx context.Context, src Source, cached bool) (*Bundle, error) {
	key := cacheKey{src.URL, src.SHA256}
	if cached {
		f.mu.Lock()
		b, ok := f.cache[key]
		f.mu.Unlock()
		if ok {
			return b, nil
		}
	}
	data, err := f.download(ctx, src)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	if src.SHA256 != "" && digest != src.SHA256 {
		return nil, fmt.Errorf("%w: %s has sha256 %s, expected %s", ErrChecksum, src.URL, digest, src.SHA256)
	}
	b, err := Parse(data, f.MaxBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrContent, src.URL, err)
	}
	b.SHA256 = digest
	f.mu.Lock()
	f.cache[key] = b
	f.mu.Unlock()
	return b, nil
}

// FetchDocument downloads src and checks its checksum, without reading it
// as a bundle: for downloads of other content, such as a PolicySet's
// manifest, under the same rules (proxy, retries, size bound). src.SHA256
// is required: it names the content, so a document fetched once for a URL
// and checksum is kept and returned without a request. Errors wrap
// ErrDownload or ErrChecksum.
func (f *Fetcher) FetchDocument(ctx context.Context, src Source) ([]byte, error) {
	if src.SHA256 == "" {
		return nil, fmt.Errorf("%w: %s: no sha256 to check it against", ErrChecksum, src.URL)
	}
	key := cacheKey{src.URL, src.SHA256}
	f.mu.Lock()
	data, ok := f.documents[key]
	f.mu.Unlock()
	if ok {
		return data, nil
	}
	data, err := f.download(ctx, src)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	if digest := hex.EncodeToString(sum[:]); digest != src.SHA256 {
		return nil, fmt.Errorf("%w: %s has sha256 %s, expected %s", ErrChecksum, src.URL, digest, src.SHA256)
	}
	f.mu.Lock()
	f.documents[key] = data
	f.mu.Unlock()
	return data, nil
}

// Forget drops every cached bundle of url, such as when no control plane
// uses it any more.
func (f *Fetcher) Forget(url string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.cache {
		if k.url == url {
			delete(f.cache, k)
		}
	}
	for k := range f.downloads {
		if k.url == url {
			delete(f.downloads, k)
		}
	}
	for k := range f.documents {
		if k.url == url {
			delete(f.documents, k)
		}
	}
}

func (f *Fetcher) download(ctx context.Context, src Source) ([]byte, error) {
	client, err := f.client(src.ProxyURL)
	if err != nil {
		return nil, err
	}
	backoff := f.Backoff
	var last error
	for attempt := 1; attempt <= max(1, f.Attempts); attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: %s: %v (after %d attempts)", ErrDownload, src.URL, last, attempt-1)
			case <-time.After(backoff):
			}
			backoff *= 2
		}
		data, retry, err := f.get(ctx, client, src.URL)
		if err == nil {
			return data, nil
		}
		last = err
		if !retry {
			break
		}
	}
	return nil, fmt.Errorf("%w: %s: %v", ErrDownload, src.URL, last)
}

// get makes one attempt; retry says whether another attempt may succeed.
func (f *Fetcher) get(ctx context.Context, client *http.Client, u string) (data []byte, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, f.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, true, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		// 5xx and 429 are the server's passing trouble; 4xx will not change.
		return nil, resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests, fmt.Errorf("HTTP %s", resp.Status)
	}
	data, err = io.ReadAll(io.LimitReader(resp.Body, f.MaxBytes+1))
	if err != nil {
		return nil, true, err
	}
	if int64(len(data)) > f.MaxBytes {
		return nil, false, fmt.Errorf("larger than %d bytes", f.MaxBytes)
	}
	return data, false, nil
}

// client returns an HTTP client for a proxy, reusing its connections.
func (f *Fetcher) client(proxy string) (*http.Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.transports[proxy]
	if !ok {
		t = http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil // never the environment's proxy: only the spec's
		if proxy != "" {
			pu, err := url.Parse(proxy)
			if err != nil {
				return nil, fmt.Errorf("%w: proxy %s: %v", ErrDownload, proxy, err)
			}
			t.Proxy = http.ProxyURL(pu)
		}
		t.MaxIdleConnsPerHost = 1
		t.IdleConnTimeout = 30 * time.Second
		f.transports[proxy] = t
	}
	return &http.Client{Transport: t}, nil
}

var codecs = func() serializer.CodecFactory {
	s := runtime.NewScheme()
	_ = apiextensionsv1.AddToScheme(s)
	return serializer.NewCodecFactory(s, serializer.EnableStrict)
}()

// Parse reads a bundle: a gzipped tar of YAML or JSON files, or YAML
// documents. It keeps every complete CustomResourceDefinition, and the
// partial ones (kustomize patches, such as the engine's conversion patches)
// as Patches; it skips kustomization.yaml. A document of any other kind is
// an error, as is a bundle without CRDs or a patch of a CRD it does not
// have. The Bundle's SHA256 is left to the caller.
func Parse(data []byte, maxBytes int64) (*Bundle, error) {
	var files map[string][]byte
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		var err error
		if files, err = untar(data, maxBytes); err != nil {
			return nil, err
		}
	} else {
		files = map[string][]byte{"": data}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)

	byName := map[string]*apiextensionsv1.CustomResourceDefinition{}
	var patches []Patch
	for _, n := range names {
		if path.Base(n) == "kustomization.yaml" || path.Base(n) == "kustomization.yml" {
			continue
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(files[n]), 4096)
		for i := 0; ; i++ {
			var raw runtime.RawExtension
			if err := dec.Decode(&raw); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("%s: document %d: %v", where(n), i+1, err)
			}
			raw.Raw = bytes.TrimSpace(raw.Raw)
			if len(raw.Raw) == 0 || string(raw.Raw) == "null" {
				continue
			}
			var tm metav1.TypeMeta
			if err := json.Unmarshal(raw.Raw, &tm); err != nil {
				return nil, fmt.Errorf("%s: document %d: %v", where(n), i+1, err)
			}
			if tm.GroupVersionKind() != apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition") {
				return nil, fmt.Errorf("%s: document %d is a %s %s, not an apiextensions.k8s.io/v1 CustomResourceDefinition", where(n), i+1, tm.APIVersion, tm.Kind)
			}
			if isPatch(raw.Raw) {
				var m metav1.PartialObjectMetadata
				if err := json.Unmarshal(raw.Raw, &m); err != nil || m.Name == "" {
					return nil, fmt.Errorf("%s: document %d: a partial CustomResourceDefinition without a name", where(n), i+1)
				}
				patches = append(patches, Patch{File: n, CRD: m.Name, Raw: raw.Raw})
				continue
			}
			obj, _, err := codecs.UniversalDeserializer().Decode(raw.Raw, nil, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: document %d: %v", where(n), i+1, err)
			}
			crd := obj.(*apiextensionsv1.CustomResourceDefinition)
			if _, dup := byName[crd.Name]; dup {
				return nil, fmt.Errorf("%s: CustomResourceDefinition %s appears twice", where(n), crd.Name)
			}
			crd.APIVersion, crd.Kind = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
			byName[crd.Name] = crd
		}
	}
	if len(byName) == 0 {
		return nil, errors.New("no CustomResourceDefinition in it")
	}
	for _, p := range patches {
		if _, ok := byName[p.CRD]; !ok {
			return nil, fmt.Errorf("%s patches CustomResourceDefinition %s, which the bundle does not have", p.File, p.CRD)
		}
	}
	crds := make([]*apiextensionsv1.CustomResourceDefinition, 0, len(byName))
	for _, n := range slices.Sorted(maps.Keys(byName)) {
		crds = append(crds, byName[n])
	}
	return &Bundle{CRDs: crds, Patches: patches}, nil
}

// isPatch says whether a CRD document is partial: without versions or
// names it is a kustomize patch, not a CRD of its own. It is read loosely,
// since a patch's placeholders (caBundle: "{{caBundle}}") are not valid
// values yet.
func isPatch(doc []byte) bool {
	var crd struct {
		Spec struct {
			Names struct {
				Plural string `json:"plural"`
			} `json:"names"`
			Versions []json.RawMessage `json:"versions"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(doc, &crd); err != nil {
		return false // not even loose JSON: the strict decoder says why
	}
	return len(crd.Spec.Versions) == 0 || crd.Spec.Names.Plural == ""
}

// ReadFile parses a bundle on disk, such as a release bundle a mirror
// serves, with its SHA256 set.
func ReadFile(path string) (*Bundle, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, err := Parse(data, 64<<20)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrContent, path, err)
	}
	sum := sha256.Sum256(data)
	b.SHA256 = hex.EncodeToString(sum[:])
	return b, nil
}

func where(file string) string {
	if file == "" {
		return "bundle"
	}
	return file
}

// untar returns the YAML and JSON files of a gzipped tar.
func untar(data []byte, maxBytes int64) (map[string][]byte, error) {
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gzip: %v", err)
	}
	tr := tar.NewReader(io.LimitReader(gz, maxBytes+1))
	files := map[string][]byte{}
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("tar: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		switch strings.ToLower(path.Ext(h.Name)) {
		case ".yaml", ".yml", ".json":
		default:
			continue
		}
		total += h.Size
		if total > maxBytes {
			return nil, fmt.Errorf("unpacks to more than %d bytes", maxBytes)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("tar: %s: %v", h.Name, err)
		}
		files[h.Name] = b
	}
}
