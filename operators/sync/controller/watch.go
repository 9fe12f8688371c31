package controller

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

// watch holds one control plane's informers of the objects PolicySets
// applied there: only objects labelled with a PolicySet are listed and
// watched, so its memory is what Marina applied. Any change to one (an
// edit, a deletion) wakes the PolicySet its labels name, which then
// corrects or reports it: drift is seen when it happens, not by polling.
type watch struct {
	cache  cache.Cache
	events chan<- event.GenericEvent
	cancel context.CancelFunc

	mu      sync.Mutex
	watched map[schema.GroupVersionKind]toolscache.SharedIndexInformer
}

func (r *Reconciler) newWatch(cfg *rest.Config, mapper meta.RESTMapper) (*watch, error) {
	labelled, err := labels.NewRequirement(marinav1alpha1.LabelPolicySet, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	c, err := cache.New(cfg, cache.Options{
		Scheme: runtime.NewScheme(), Mapper: mapper,
		DefaultLabelSelector: labels.NewSelector().Add(*labelled),
	})
	if err != nil {
		return nil, fmt.Errorf("watch the control plane: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = c.Start(ctx) }()
	return &watch{cache: c, events: r.events, cancel: cancel, watched: map[schema.GroupVersionKind]toolscache.SharedIndexInformer{}}, nil
}

// ensure adds an informer for each kind not watched yet. A kind the control
// plane does not serve is skipped; it is tried again on the next pass.
func (w *watch) ensure(ctx context.Context, kinds []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range kinds {
		gvk, ok := parseKind(k)
		if _, seen := w.watched[gvk]; !ok || seen {
			continue
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		inf, err := w.cache.GetInformer(ctx, u, cache.BlockUntilSynced(false))
		if err != nil {
			if meta.IsNoMatchError(err) {
				continue
			}
			return fmt.Errorf("watch %s: %w", gvk.Kind, err)
		}
		sii, ok := inf.(toolscache.SharedIndexInformer)
		if !ok {
			return fmt.Errorf("watch %s: informer %T", gvk.Kind, inf)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    w.wake,
			UpdateFunc: func(_, o any) { w.wake(o) },
			DeleteFunc: w.wake,
		}); err != nil {
			return err
		}
		w.watched[gvk] = sii
	}
	return nil
}

// live is the resourceVersion of an object as the watch last saw it;
// known is false while the kind is not watched or not listed yet.
func (w *watch) live(gvk schema.GroupVersionKind, namespace, name string) (rv string, exists, known bool) {
	w.mu.Lock()
	inf, ok := w.watched[gvk]
	w.mu.Unlock()
	if !ok || !inf.HasSynced() {
		return "", false, false
	}
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	o, exists, err := inf.GetStore().GetByKey(key)
	if err != nil {
		return "", false, false
	}
	if !exists {
		return "", false, true
	}
	obj, ok := o.(client.Object)
	if !ok {
		return "", false, false
	}
	return obj.GetResourceVersion(), true, true
}

// list is every watched object of a kind that carries labels, from the
// watch's store; ok is false while the kind is not watched or not listed
// yet, and the caller asks the API server instead.
func (w *watch) list(gvk schema.GroupVersionKind, labels map[string]string) (objs []*unstructured.Unstructured, ok bool) {
	w.mu.Lock()
	inf, watched := w.watched[gvk]
	w.mu.Unlock()
	if !watched || !inf.HasSynced() {
		return nil, false
	}
	for _, o := range inf.GetStore().List() {
		u, isU := o.(*unstructured.Unstructured)
		if !isU {
			return nil, false
		}
		match := true
		for k, v := range labels {
			match = match && u.GetLabels()[k] == v
		}
		if match {
			objs = append(objs, u)
		}
	}
	return objs, true
}

// wake queues the PolicySet an object's labels name.
func (w *watch) wake(o any) {
	if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	obj, ok := o.(client.Object)
	if !ok {
		return
	}
	l := obj.GetLabels()
	name, ns := l[marinav1alpha1.LabelPolicySet], l[marinav1alpha1.LabelPolicySetNamespace]
	if name == "" || ns == "" {
		return
	}
	ps := &marinav1alpha1.PolicySet{}
	ps.Name, ps.Namespace = name, ns
	w.events <- event.GenericEvent{Object: ps}
}

func (w *watch) stop() {
	if w != nil {
		w.cancel()
	}
}
