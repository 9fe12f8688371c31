package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/operators/controlplane/externaletcd"
)

// DataStoreFinalizer holds a DataStore while a ControlPlane uses it: its
// credentials are what removes the control plane's keys, user and role.
const DataStoreFinalizer = "marina.dev/datastore-in-use"

// dataStoreIndex indexes ControlPlanes by the DataStore they name.
const dataStoreIndex = "spec.etcd.external.dataStore"

// dataStoreRecheck is how often a healthy DataStore is checked again.
const dataStoreRecheck = 5 * time.Minute

// DataStoreReconciler reports each DataStore's health (etcd answers the
// root certificate, its authentication is on) and use, and keeps it while a
// ControlPlane uses it.
type DataStoreReconciler struct {
	Client client.Client
	// APIReader reads the DataStore's Secrets, which the cache does not
	// hold.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// RetryAfter is how soon a DataStore that does not work is checked
	// again; 15 s when zero.
	RetryAfter time.Duration
}

// IndexControlPlanesByDataStore registers the index both reconcilers use.
func IndexControlPlanesByDataStore(ctx context.Context, mgr manager.Manager) error {
	return mgr.GetFieldIndexer().IndexField(ctx, &marinav1alpha1.ControlPlane{}, dataStoreIndex, func(o client.Object) []string {
		if name := dataStoreName(o.(*marinav1alpha1.ControlPlane)); name != "" {
			return []string{name}
		}
		return nil
	})
}

// SetupWithManager registers the reconciler; a ControlPlane that comes,
// goes or changes DataStore wakes the DataStores it names.
func (r *DataStoreReconciler) SetupWithManager(mgr manager.Manager) error {
	if r.RetryAfter == 0 {
		r.RetryAfter = 15 * time.Second
	}
	return builder.ControllerManagedBy(mgr).
		For(&marinav1alpha1.DataStore{}).
		Watches(&marinav1alpha1.ControlPlane{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			if name := dataStoreName(o.(*marinav1alpha1.ControlPlane)); name != "" {
				return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: name}}}
			}
			return nil
		})).
		Named("datastore").
		Complete(r)
}

// Reconcile checks one DataStore.
func (r *DataStoreReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	ds := &marinav1alpha1.DataStore{}
	if err := r.Client.Get(ctx, req.NamespacedName, ds); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	before := ds.DeepCopy()
	users := &marinav1alpha1.ControlPlaneList{}
	if err := r.Client.List(ctx, users, client.MatchingFields{dataStoreIndex: ds.Name}); err != nil {
		return reconcile.Result{}, fmt.Errorf("list the ControlPlanes of DataStore %s: %w", ds.Name, err)
	}
	var names []string
	for _, cp := range users.Items {
		names = append(names, cp.Namespace+"/"+cp.Name)
	}
	slices.Sort(names)
	ds.Status.ControlPlanes = int32(len(names))
	ds.Status.ObservedGeneration = ds.Generation

	if !ds.DeletionTimestamp.IsZero() {
		if len(names) > 0 {
			r.set(ds, metav1.ConditionFalse, marinav1alpha1.ReasonInUse, fmt.Sprintf(
				"being deleted, and waiting for the %d ControlPlanes that use it to go: %s", len(names), summarize(names)))
			return reconcile.Result{}, r.patchStatus(ctx, before, ds)
		}
		if err := r.patchStatus(ctx, before, ds); err != nil {
			return reconcile.Result{}, err
		}
		b := ds.DeepCopy()
		controllerutil.RemoveFinalizer(ds, DataStoreFinalizer)
		return reconcile.Result{}, client.IgnoreNotFound(r.Client.Patch(ctx, ds, client.MergeFromWithOptions(b, client.MergeFromWithOptimisticLock{})))
	}
	if !controllerutil.ContainsFinalizer(ds, DataStoreFinalizer) {
		b := ds.DeepCopy()
		controllerutil.AddFinalizer(ds, DataStoreFinalizer)
		if err := r.Client.Patch(ctx, ds, client.MergeFromWithOptions(b, client.MergeFromWithOptimisticLock{})); err != nil {
			return reconcile.Result{}, fmt.Errorf("add finalizer: %w", err)
		}
		before.Finalizers = ds.Finalizers
		before.ResourceVersion = ds.ResourceVersion
	}

	after := dataStoreRecheck
	reason, msg := r.check(ctx, ds)
	if reason == "" {
		r.set(ds, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded, fmt.Sprintf(
			"etcd answers the root certificate and checks credentials; %d ControlPlanes use it", len(names)))
	} else {
		r.set(ds, metav1.ConditionFalse, reason, msg)
		after = r.RetryAfter
	}
	return reconcile.Result{RequeueAfter: after}, r.patchStatus(ctx, before, ds)
}

// check returns a reason and message when the DataStore does not work.
func (r *DataStoreReconciler) check(ctx context.Context, ds *marinav1alpha1.DataStore) (string, string) {
	access, reason, problem, err := dataStoreCredentials(ctx, r.APIReader, ds)
	if err != nil {
		return marinav1alpha1.ReasonStageFailed, err.Error()
	}
	if problem != "" {
		return reason, problem
	}
	if _, _, err := externaletcd.ParseCA(access.caCert, access.caKey); err != nil {
		return marinav1alpha1.ReasonInvalidSecret, fmt.Sprintf("Secret %s/%s named in spec.clientCASecretRef: %v",
			ds.Spec.ClientCASecretRef.Namespace, ds.Spec.ClientCASecretRef.Name, err)
	}
	err = access.root.CheckAuth(ctx)
	switch {
	case err == nil:
		return "", ""
	case errors.Is(err, externaletcd.ErrAuthDisabled):
		return marinav1alpha1.ReasonEtcdAuthDisabled, "etcd authentication is off: every client may read and write every key, so no role keeps control planes apart; enable it (etcdctl user add root, etcdctl auth enable)"
	case errors.Is(err, externaletcd.ErrInvalidTLS):
		return marinav1alpha1.ReasonInvalidSecret, fmt.Sprintf("Secret %s/%s named in spec.rootSecretRef: %v",
			ds.Spec.RootSecretRef.Namespace, ds.Spec.RootSecretRef.Name, err)
	}
	return marinav1alpha1.ReasonEtcdUnreachable, fmt.Sprintf("etcd (spec.endpoints) does not answer the root certificate of Secret %s/%s: %v",
		ds.Spec.RootSecretRef.Namespace, ds.Spec.RootSecretRef.Name, err)
}

// set sets Ready, with an Event when it changes.
func (r *DataStoreReconciler) set(ds *marinav1alpha1.DataStore, status metav1.ConditionStatus, reason, msg string) {
	old := meta.FindStatusCondition(ds.Status.Conditions, marinav1alpha1.ConditionReady)
	changed := old == nil || old.Status != status || old.Reason != reason
	meta.SetStatusCondition(&ds.Status.Conditions, metav1.Condition{
		Type: marinav1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg, ObservedGeneration: ds.Generation,
	})
	if !changed || r.Recorder == nil {
		return
	}
	typ := corev1.EventTypeNormal
	if status != metav1.ConditionTrue {
		typ = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(ds, nil, typ, reason, "Check", "%s", msg)
}

func (r *DataStoreReconciler) patchStatus(ctx context.Context, before, ds *marinav1alpha1.DataStore) error {
	if equality.Semantic.DeepEqual(before.Status, ds.Status) {
		return nil
	}
	if err := r.Client.Status().Patch(ctx, ds, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("patch the status of DataStore %s: %w", ds.Name, err)
	}
	log.FromContext(ctx).V(1).Info("DataStore status", "controlPlanes", ds.Status.ControlPlanes)
	return nil
}
