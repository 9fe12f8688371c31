package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/manifest"
	"github.com/marina-platform/marina/operators/controlplane/crdbundle"
	"github.com/marina-platform/marina/policies"
)

// objectSet is what a PolicySet's sources define: each object once, in the
// order to apply them, and the checksum that names the set.
type objectSet struct {
	objects  []*unstructured.Unstructured
	checksum string

	// labelled are the objects as applied, with the PolicySet's labels;
	// keys and hashes name each in the memo and its content, computed once
	// per pass for every control plane.
	labelled []*unstructured.Unstructured
	keys     []string
	hashes   []string
}

// label prepares the set for applying as ps's.
func (set *objectSet) label(ps *marinav1alpha1.PolicySet) error {
	psKey := ps.Namespace + "/" + ps.Name + " "
	for _, desired := range set.objects {
		o := desired.DeepCopy()
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		for k, v := range selector(ps) {
			labels[k] = v
		}
		o.SetLabels(labels)
		hash, err := contentHash(o)
		if err != nil {
			return fmt.Errorf("%s: %w", describe(o), err)
		}
		set.labelled = append(set.labelled, o)
		set.keys = append(set.keys, psKey+objectKey(o))
		set.hashes = append(set.hashes, hash)
	}
	return nil
}

// objectKey identifies an object in a control plane; the version is left
// out, since two versions of a kind are one object.
func objectKey(u *unstructured.Unstructured) string {
	gvk := u.GroupVersionKind()
	return gvk.Group + "/" + gvk.Kind + " " + u.GetNamespace() + "/" + u.GetName()
}

// describe names an object for a person: Kind namespace/name.
func describe(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return u.GetKind() + " " + ns + "/" + u.GetName()
	}
	return u.GetKind() + " " + u.GetName()
}

// sourceError is a source that cannot be read, with what to fix.
type sourceError struct {
	index int
	err   error
}

func (e *sourceError) Error() string { return fmt.Sprintf("spec.sources[%d]: %v", e.index, e.err) }
func (e *sourceError) Unwrap() error { return e.err }

// resolve reads every source in turn. A later source's object replaces an
// earlier one with the same key. Objects with status or server-set
// metadata have those fields dropped: they are never applied.
func (r *Reconciler) resolve(ctx context.Context, ps *marinav1alpha1.PolicySet) (*objectSet, error) {
	byKey := map[string]*unstructured.Unstructured{}
	var order []string
	for i, src := range ps.Spec.Sources {
		objs, err := r.read(ctx, ps.Namespace, src)
		if err != nil {
			return nil, &sourceError{i, err}
		}
		for _, o := range objs {
			clean(o)
			k := objectKey(o)
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			byKey[k] = o
		}
	}
	set := &objectSet{}
	for _, k := range order {
		set.objects = append(set.objects, byKey[k])
	}
	manifest.Order(set.objects)
	sum, err := checksum(set.objects)
	if err != nil {
		return nil, err
	}
	set.checksum = sum
	if err := set.label(ps); err != nil {
		return nil, err
	}
	return set, nil
}

// read is one source's objects.
func (r *Reconciler) read(ctx context.Context, namespace string, src marinav1alpha1.PolicySource) ([]*unstructured.Unstructured, error) {
	switch {
	case len(src.Inline) > 0:
		var objs []*unstructured.Unstructured
		for j, raw := range src.Inline {
			docs, err := manifest.Parse(raw.Raw)
			if err != nil || len(docs) != 1 {
				return nil, fmt.Errorf("inline[%d]: want one object with apiVersion, kind and metadata.name: %v", j, err)
			}
			objs = append(objs, docs[0])
		}
		return objs, nil
	case src.ConfigMapRef != nil:
		ref := src.ConfigMapRef
		cm := &corev1.ConfigMap{}
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, cm); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("ConfigMap %s/%s does not exist", namespace, ref.Name)
			}
			return nil, fmt.Errorf("read ConfigMap %s/%s: %w", namespace, ref.Name, err)
		}
		keys := []string{ref.Key}
		if ref.Key == "" {
			keys = keys[:0]
			for k := range cm.Data {
				keys = append(keys, k)
			}
			slices.Sort(keys)
		}
		var objs []*unstructured.Unstructured
		for _, k := range keys {
			data, ok := cm.Data[k]
			if !ok {
				return nil, fmt.Errorf("ConfigMap %s/%s has no key %q", namespace, ref.Name, k)
			}
			docs, err := r.parse([]byte(data))
			if err != nil {
				return nil, fmt.Errorf("ConfigMap %s/%s key %s: %w", namespace, ref.Name, k, err)
			}
			objs = append(objs, docs...)
		}
		return objs, nil
	case src.Bundle != "":
		return policies.Objects(src.Bundle)
	case src.HTTP != nil:
		if err := r.URLPolicy.Check(src.HTTP.URL, false); err != nil {
			return nil, fmt.Errorf("http.url: %w", err)
		}
		if src.HTTP.ProxyURL != "" {
			if err := r.URLPolicy.Check(src.HTTP.ProxyURL, false); err != nil {
				return nil, fmt.Errorf("http.proxyURL: %w", err)
			}
		}
		data, err := r.Fetcher.FetchDocument(ctx, crdbundle.Source{URL: src.HTTP.URL, SHA256: src.HTTP.SHA256, ProxyURL: src.HTTP.ProxyURL})
		if err != nil {
			return nil, err
		}
		docs, err := r.parse(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.HTTP.URL, err)
		}
		return docs, nil
	}
	return nil, errors.New("sets none of inline, configMapRef, bundle or http")
}

// parsedCache keeps documents already parsed, by the SHA-256 of their
// bytes: a ConfigMap whose one key of many changed costs the parse of that
// key only. It is emptied when it holds more than parsedCacheSize.
type parsedCache struct {
	mu sync.Mutex
	m  map[[32]byte][]*unstructured.Unstructured
}

const parsedCacheSize = 256

// parse is manifest.Parse through the cache; the objects are copies, the
// caller's to change.
func (r *Reconciler) parse(data []byte) ([]*unstructured.Unstructured, error) {
	key := sha256.Sum256(data)
	r.parsed.mu.Lock()
	docs, ok := r.parsed.m[key]
	r.parsed.mu.Unlock()
	if !ok {
		var err error
		if docs, err = manifest.Parse(data); err != nil {
			return nil, err
		}
		r.parsed.mu.Lock()
		if r.parsed.m == nil || len(r.parsed.m) >= parsedCacheSize {
			r.parsed.m = map[[32]byte][]*unstructured.Unstructured{}
		}
		r.parsed.m[key] = docs
		r.parsed.mu.Unlock()
	}
	out := make([]*unstructured.Unstructured, len(docs))
	for i, d := range docs {
		out[i] = d.DeepCopy()
	}
	return out, nil
}

// clean drops what the server owns from an object to apply.
func clean(u *unstructured.Unstructured) {
	delete(u.Object, "status")
	for _, f := range []string{"resourceVersion", "uid", "generation", "creationTimestamp", "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"} {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
}

// checksum is the SHA-256 of the objects' canonical JSON, in key order:
// two data centers with equal checksums hold identical policies whatever
// order their sources listed them in.
func checksum(objs []*unstructured.Unstructured) (string, error) {
	sorted := slices.Clone(objs)
	slices.SortFunc(sorted, func(a, b *unstructured.Unstructured) int { return strings.Compare(objectKey(a), objectKey(b)) })
	h := sha256.New()
	for _, o := range sorted {
		// encoding/json sorts map keys: the same object, the same bytes.
		b, err := json.Marshal(o.Object)
		if err != nil {
			return "", fmt.Errorf("%s: %w", describe(o), err)
		}
		h.Write(b)
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
