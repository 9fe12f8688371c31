// Package secrets reads Secrets for an operator that must find them in any
// namespace, without holding every Secret of the cluster in its memory, as
// a cached client would: the manager watches Secrets' metadata only, which
// says which exist and at which resourceVersion, and the data of the
// Secrets the operator actually reads is fetched from the API server once
// per resourceVersion and remembered. A Secret nobody reads is never
// fetched, and a read of one that did not change costs no request.
package secrets

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// lastApplied is the annotation kubectl apply leaves, which on a Secret
// holds the Secret's data.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// ManagerOptions makes the manager's client read Secrets from the API
// server, never from a cache of every Secret, and keeps the metadata it
// watches free of what may carry a Secret's data.
func ManagerOptions(o *ctrl.Options) {
	if o.Client.Cache == nil {
		o.Client.Cache = &client.CacheOptions{}
	}
	o.Client.Cache.DisableFor = append(o.Client.Cache.DisableFor, &corev1.Secret{})
	prev := o.Cache.DefaultTransform
	o.Cache.DefaultTransform = func(obj any) (any, error) {
		if prev != nil {
			var err error
			if obj, err = prev(obj); err != nil {
				return obj, err
			}
		}
		if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
			m.ManagedFields = nil
			if _, ok := m.Annotations[lastApplied]; ok {
				a := make(map[string]string, len(m.Annotations)-1)
				for k, v := range m.Annotations {
					if k != lastApplied {
						a[k] = v
					}
				}
				m.Annotations = a
			}
		}
		return obj, nil
	}
}

// Object is what a watch of Secrets' metadata takes (builder's
// WatchesMetadata) and what Reader reads from the cache.
func Object() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}

// List is a list of Secrets' metadata, for a cache's List.
func List() *metav1.PartialObjectMetadataList {
	l := &metav1.PartialObjectMetadataList{}
	l.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	return l
}

// Reader reads Secrets as the package says.
type Reader struct {
	meta client.Reader
	live client.Reader

	mu   sync.Mutex
	data map[client.ObjectKey]*corev1.Secret
}

// NewReader reads metadata from the manager's cache (which starts the
// metadata informer on first use, if no watch did) and data from the API
// server.
func NewReader(mgr manager.Manager) *Reader {
	return &Reader{meta: mgr.GetCache(), live: mgr.GetAPIReader(), data: map[client.ObjectKey]*corev1.Secret{}}
}

// Get reads a Secret into s. A Secret whose watched resourceVersion is the
// one last fetched is answered from memory.
func (r *Reader) Get(ctx context.Context, key client.ObjectKey, s *corev1.Secret) error {
	m := Object()
	if err := r.meta.Get(ctx, key, m); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(key)
		}
		return err
	}
	r.mu.Lock()
	known, ok := r.data[key]
	r.mu.Unlock()
	if ok && known.ResourceVersion == m.ResourceVersion {
		known.DeepCopyInto(s)
		return nil
	}
	fresh := &corev1.Secret{}
	if err := r.live.Get(ctx, key, fresh); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(key)
		}
		return err
	}
	fresh.ManagedFields = nil
	r.mu.Lock()
	r.data[key] = fresh
	r.mu.Unlock()
	fresh.DeepCopyInto(s)
	return nil
}

// forget drops what is remembered of a Secret that is gone.
func (r *Reader) forget(key client.ObjectKey) {
	r.mu.Lock()
	delete(r.data, key)
	r.mu.Unlock()
}

// Len is how many Secrets' data is remembered.
func (r *Reader) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.data)
}
