// Package controller is the controlplane operator's reconciler: it turns a
// ControlPlane into a running federation control plane in the management
// cluster, one stage after the other, each idempotent and each reporting a
// condition (see ARCHITECTURE.md, "How a control plane is built").
package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/urlpolicy"
	"github.com/marina-platform/marina/operators/controlplane/crdbundle"
	"github.com/marina-platform/marina/operators/controlplane/render"
)

const (
	// FieldManager owns every field the operator applies.
	FieldManager = "marina-controlplane"
	// Finalizer keeps a ControlPlane until everything made for it is gone.
	Finalizer = "marina.dev/controlplane"

	labelInstance  = "app.kubernetes.io/instance"
	labelManagedBy = "app.kubernetes.io/managed-by"
	labelComponent = "app.kubernetes.io/component"
)

// Reconciler provisions, upgrades and deletes control planes.
type Reconciler struct {
	// Client reads from the manager's cache, which holds only ControlPlanes
	// and the objects labelled as the operator's (see CacheOptions), and
	// writes to the API server.
	Client client.Client
	// APIReader reads what the cache does not hold: the user's Secrets and
	// issuers, PriorityClasses.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Chart     *render.Chart
	CRDs      *crdbundle.Fetcher
	// Federation holds clients of the control planes' API servers.
	Federation *FederationClients
	// DataCenter is the operator's; ControlPlanes of others are left alone.
	DataCenter string
	// FederationURL is where the operator reaches a control plane's API
	// server; the Service's cluster DNS name when nil.
	FederationURL func(cp *marinav1alpha1.ControlPlane, port int32) string
	// RetryAfter is how soon a stage blocked by the user's input (a missing
	// Secret, an unreachable URL) is tried again; 15 s when zero.
	RetryAfter time.Duration
	// KMSPluginImage is the kms-vault image run next to the API servers of
	// control planes with spec.encryption; without it they are refused.
	KMSPluginImage string
	// OperatorNamespace is where Marina's operators run: the control
	// planes' NetworkPolicies let its pods reach their API servers.
	OperatorNamespace string
	// PodCIDRs are the management cluster's pod networks: addresses outside
	// them (clients from outside the cluster) may reach the API servers.
	PodCIDRs []string
	// URLPolicy limits the hosts a spec's URLs may name and where Vault may
	// be plain http; the zero value allows any host and no plain http.
	URLPolicy urlpolicy.Policy
	// VaultPollInterval is how often Vault is asked for the transit key's
	// latest version, to notice a rotation; DefaultVaultPollInterval when
	// zero.
	VaultPollInterval time.Duration
	// etcdChecks holds, by control plane, the last successful check of its
	// external etcd (etcdCheck).
	etcdChecks sync.Map
	// tenantChecks holds, by control plane, when its DataStore user and
	// role were last made sure of (tenantCheck).
	tenantChecks sync.Map
	// migrations are the storage migrations running in the background.
	migrations migrations
	// wake enqueues a control plane (see SetupWithManager).
	wake func(types.NamespacedName)
	// applied holds, by appliedKey, what the operator last applied to each
	// object in the management cluster (appliedObject), so that a pass
	// that changes nothing writes nothing.
	applied sync.Map
	// crdsApplied holds, by control plane, what the CRD stage last applied
	// (appliedCRDs), so that an unchanged pass costs one list.
	crdsApplied sync.Map
	// vaultChecks caches each control plane's last successful Vault check.
	vaultMu     sync.Mutex
	vaultChecks map[types.UID]vaultCheck

	// ClusterDomain is the management cluster's DNS domain; cluster.local
	// when empty.
	ClusterDomain string

	// MaxConcurrentReconciles is how many control planes are reconciled at
	// once; 4 when zero.
	MaxConcurrentReconciles int
}

// ManagerOptions are the manager's cache and client options the
// reconciler relies on (CacheOptions), and cached reads of the cert-manager
// objects it watches, which it reads as unstructured objects: without it
// every such read would go to the API server.
func ManagerOptions(o *ctrl.Options) {
	CacheOptions(&o.Cache)
	if o.Client.Cache == nil {
		o.Client.Cache = &client.CacheOptions{}
	}
	o.Client.Cache.Unstructured = true
}

// CacheOptions limits the manager's cache to what the reconciler watches:
// every ControlPlane, and only the Secrets, workloads and cert-manager
// objects labelled as made by this operator. Without it the cache would
// hold every Secret and Deployment of the management cluster.
func CacheOptions(o *cache.Options) {
	mine := labels.SelectorFromSet(labels.Set{labelManagedBy: render.ManagedBy})
	if o.ByObject == nil {
		o.ByObject = map[client.Object]cache.ByObject{}
	}
	for _, obj := range []client.Object{
		&corev1.Secret{}, &corev1.Service{}, &corev1.ServiceAccount{}, &appsv1.Deployment{}, &appsv1.StatefulSet{},
		&policyv1.PodDisruptionBudget{}, newUnstructured(certificateGVK), newUnstructured(issuerGVK), &networkingv1.NetworkPolicy{},
	} {
		o.ByObject[obj] = cache.ByObject{Label: mine}
	}
	// Nothing reads managed fields; they are most of a cached object's size.
	o.DefaultTransform = cache.TransformStripManagedFields()
}

// SetupWithManager registers the reconciler; it runs again whenever a
// ControlPlane or anything made for it changes, a renewed certificate
// included.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.RetryAfter == 0 {
		r.RetryAfter = 15 * time.Second
	}
	if r.MaxConcurrentReconciles == 0 {
		r.MaxConcurrentReconciles = 4
	}
	if r.FederationURL == nil {
		r.FederationURL = ServiceURL
	}
	if r.Federation == nil {
		r.Federation = NewFederationClients()
	}
	// What runs in the background (CRD downloads, storage migrations)
	// wakes the control planes it works for.
	// A wake never blocks: with the buffer full, enough wakes are queued
	// already (and a stopped manager reads none), so it is dropped.
	wakeups := make(chan event.TypedGenericEvent[*marinav1alpha1.ControlPlane], 1024)
	r.wake = func(key types.NamespacedName) {
		select {
		case wakeups <- event.TypedGenericEvent[*marinav1alpha1.ControlPlane]{
			Object: &marinav1alpha1.ControlPlane{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}},
		}:
		default:
		}
	}
	r.CRDs.OnChange = func(waiter string) {
		ns, name, _ := strings.Cut(waiter, "/")
		r.wake(types.NamespacedName{Namespace: ns, Name: name})
	}
	// DataStores have a reconciler of their own; both find the control
	// planes of a DataStore through one index.
	if err := IndexControlPlanesByDataStore(context.Background(), mgr); err != nil {
		return err
	}
	if err := (&DataStoreReconciler{
		Client: r.Client, APIReader: r.APIReader, Recorder: r.Recorder, RetryAfter: r.RetryAfter,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&marinav1alpha1.ControlPlane{}).
		// A DataStore fixed or changed wakes the control planes on it.
		Watches(&marinav1alpha1.DataStore{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			list := &marinav1alpha1.ControlPlaneList{}
			if err := mgr.GetClient().List(ctx, list, client.MatchingFields{dataStoreIndex: o.GetName()}); err != nil {
				return nil
			}
			reqs := make([]reconcile.Request, 0, len(list.Items))
			for _, cp := range list.Items {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&cp)})
			}
			return reqs
		})).
		WatchesRawSource(source.Channel(wakeups, &handler.TypedEnqueueRequestForObject[*marinav1alpha1.ControlPlane]{})).
		Owns(&appsv1.Deployment{}).
		Owns(&appsv1.StatefulSet{}).
		Owns(&corev1.Service{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Owns(newUnstructured(certificateGVK)).
		Owns(newUnstructured(issuerGVK)).
		// cert-manager writes the certificates' Secrets; they carry the
		// control plane's labels but no owner reference.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(toControlPlane)).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Complete(r)
}

func (r *Reconciler) clusterDomain() string {
	if r.ClusterDomain == "" {
		return "cluster.local"
	}
	return r.ClusterDomain
}

// toControlPlane maps an object labelled with a control plane's name to it.
func toControlPlane(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[labelInstance]
	if name == "" || o.GetLabels()[labelManagedBy] != render.ManagedBy {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
}

// ServiceURL is the API server's address inside the management cluster.
func ServiceURL(cp *marinav1alpha1.ControlPlane, port int32) string {
	return fmt.Sprintf("https://%s-apiserver.%s.svc:%d", cp.Name, cp.Namespace, port)
}

// Reconcile fetches the ControlPlane, runs the delete or the normal path and
// patches the status once at the end, emitting an Event for every condition
// that changed.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, err error) {
	cp := &marinav1alpha1.ControlPlane{}
	if err := r.Client.Get(ctx, req.NamespacedName, cp); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	s := newScope(cp)
	defer func() {
		// Every pass publishes the conditions, so that the metrics are
		// there after an operator restart too.
		if s.foreign || !cp.DeletionTimestamp.IsZero() {
			forget(cp)
		} else {
			observe(s.before, cp)
		}
		perr := r.patchStatus(ctx, s)
		switch {
		case perr == nil || err != nil:
		case s.optimisticStatus && apierrors.IsConflict(perr):
			// This run read a status older than the one stored: run again
			// on the newer one, quietly.
			res = ctrl.Result{RequeueAfter: 200 * time.Millisecond}
		default:
			err = perr
		}
	}()
	if !cp.DeletionTimestamp.IsZero() {
		r.forgetVaultCheck(cp.UID)
		r.crdsApplied.Delete(cp.UID)
		return r.reconcileDelete(ctx, s)
	}
	return r.reconcileNormal(ctx, s)
}

// patchStatus writes the status if it changed, and reports each condition
// that changed as an Event and a log line, so that a provisioning run can
// be followed from either.
func (r *Reconciler) patchStatus(ctx context.Context, s *scope) error {
	cp := s.cp
	if equality.Semantic.DeepEqual(s.before.Status, cp.Status) {
		return nil
	}
	logger := log.FromContext(ctx)
	for _, c := range cp.Status.Conditions {
		old := meta.FindStatusCondition(s.before.Status.Conditions, c.Type)
		if old != nil && old.Status == c.Status && old.Reason == c.Reason {
			continue
		}
		logger.Info("Condition changed", "type", c.Type, "status", c.Status, "reason", c.Reason, "message", c.Message)
		if r.Recorder == nil || c.Type != marinav1alpha1.ConditionReady && !isProblem(c.Reason) {
			continue
		}
		eventType := corev1.EventTypeNormal
		if isProblem(c.Reason) {
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(cp, nil, eventType, c.Reason, c.Type, "%s", c.Message)
	}
	patch := client.MergeFrom(s.before)
	if s.optimisticStatus {
		patch = client.MergeFromWithOptions(s.before, client.MergeFromWithOptimisticLock{})
	}
	if err := r.Client.Status().Patch(ctx, cp, patch); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("patch status of ControlPlane %s/%s: %w", cp.Namespace, cp.Name, err)
	}
	return nil
}

// addFinalizer makes sure deletion waits for the clean-up.
func (r *Reconciler) addFinalizer(ctx context.Context, cp *marinav1alpha1.ControlPlane) error {
	if controllerutil.ContainsFinalizer(cp, Finalizer) {
		return nil
	}
	before := cp.DeepCopy()
	controllerutil.AddFinalizer(cp, Finalizer)
	// With the resourceVersion read: a merge patch of the finalizer list
	// replaces the whole list, so one written meanwhile by someone else
	// would be lost.
	return r.Client.Patch(ctx, cp, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}

func newUnstructured(gvk schema.GroupVersionKind) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u
}
