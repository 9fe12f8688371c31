package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/operators/controlplane/render"
)

// ownedKinds are the kinds of everything the operator makes for a control
// plane in the management cluster, workloads first so that their pods stop
// before the Secrets they mount go.
var ownedKinds = []schema.GroupVersionKind{
	appsv1.SchemeGroupVersion.WithKind("Deployment"),
	appsv1.SchemeGroupVersion.WithKind("StatefulSet"),
	policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"),
	corev1.SchemeGroupVersion.WithKind("Service"),
	corev1.SchemeGroupVersion.WithKind("ServiceAccount"),
	certificateGVK,
	issuerGVK,
	corev1.SchemeGroupVersion.WithKind("Secret"),
	// Last: the pods they guard are gone by then.
	networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy"),
}

// owned lists the control plane's objects of one kind by their labels, from
// the cache: typed lists for Kubernetes' kinds, so they hit the same
// label-restricted informers as the watches (an unstructured list would
// start an informer of its own, over every object of the kind).
// Secrets written by cert-manager carry the labels but no owner; everything
// else must also be controlled by this ControlPlane.
func (r *Reconciler) owned(ctx context.Context, cp *marinav1alpha1.ControlPlane, gvk schema.GroupVersionKind) ([]client.Object, error) {
	listGVK := gvk.GroupVersion().WithKind(gvk.Kind + "List")
	var list client.ObjectList
	if obj, err := r.Client.Scheme().New(listGVK); err == nil {
		list = obj.(client.ObjectList)
	} else {
		u := &unstructured.UnstructuredList{}
		u.SetGroupVersionKind(listGVK)
		list = u
	}
	if err := r.Client.List(ctx, list, client.InNamespace(cp.Namespace), client.MatchingLabels{
		labelInstance: cp.Name, labelManagedBy: render.ManagedBy,
	}); err != nil {
		return nil, fmt.Errorf("list %ss of control plane %s: %w", gvk.Kind, cp.Name, err)
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	// Every Secret the spec names, found by walking the API's types.
	userSecrets := cp.Spec.SecretNames()
	var out []client.Object
	for _, item := range items {
		o, ok := item.(client.Object)
		if !ok {
			continue
		}
		if gvk.Kind == "Secret" {
			// Never a Secret the user named in the spec, whatever its labels.
			if slices.Contains(userSecrets, o.GetName()) {
				continue
			}
		} else if ref := metav1.GetControllerOf(o); ref == nil || ref.UID != cp.UID {
			continue
		}
		out = append(out, o)
	}
	return out, nil
}

// prune deletes what an earlier spec made and this one does not: a
// component switched off, a PDB no longer needed, the CA Issuer after a
// switch to issuerRef, and their Secrets.
func (r *Reconciler) prune(ctx context.Context, s *scope) (result, error) {
	cp := s.cp
	want := map[string]bool{}
	key := func(kind, name string) string { return kind + "/" + name }
	for _, o := range s.objects {
		want[key(o.GetKind(), o.GetName())] = true
		if o.GroupVersionKind() == certificateGVK {
			if n, _, _ := unstructured.NestedString(o.Object, "spec", "secretName"); n != "" {
				want[key("Secret", n)] = true
			}
		}
	}
	for _, part := range kubeconfigComponents(cp) {
		want[key("Secret", cp.Name+"-"+part+"-kubeconfig")] = true
	}
	want[key("Secret", cp.Name+"-admin-kubeconfig")] = true
	want[key("Secret", RegistrationKubeconfigSecretName(cp))] = true
	want[key("Secret", SyncKubeconfigSecretName(cp))] = true
	want[key("Secret", ClientCASecretName(cp))] = true
	if s.dataStore != nil {
		want[key("Secret", EtcdClientSecretName(cp))] = true
	}
	if cp.Spec.Encryption != nil {
		want[key("Secret", EncryptionConfigSecretName(cp))] = true
	}
	if cp.Spec.Certificates.CASecretRef != nil {
		want[key("Issuer", cp.Name+"-ca")] = true
	}

	for _, gvk := range ownedKinds {
		objs, err := r.owned(ctx, cp, gvk)
		if err != nil {
			return proceed, err
		}
		for _, o := range objs {
			if want[key(gvk.Kind, o.GetName())] || !o.GetDeletionTimestamp().IsZero() {
				continue
			}
			log.FromContext(ctx).Info("Deleting what the spec no longer asks for", "kind", gvk.Kind, "name", o.GetName())
			if err := r.Client.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
				return proceed, fmt.Errorf("delete %s %s: %w", gvk.Kind, o.GetName(), err)
			}
		}
	}
	return proceed, nil
}

// reconcileDelete removes everything made for the control plane: workloads
// first (waiting until their pods are gone), then Services, cert-manager
// objects and the operator's Secrets; then, with deletionPolicy Delete, the
// control plane's keys in external etcd. The user's Secrets stay.
func (r *Reconciler) reconcileDelete(ctx context.Context, s *scope) (ctrl.Result, error) {
	cp := s.cp
	if !controllerutil.ContainsFinalizer(cp, Finalizer) {
		return ctrl.Result{}, nil
	}
	s.notReady(marinav1alpha1.ReasonDeleting, "deleting the control plane's workloads, certificates and Secrets")

	var remaining []string
	for _, gvk := range ownedKinds {
		objs, err := r.owned(ctx, cp, gvk)
		if err != nil {
			return ctrl.Result{}, err
		}
		for _, o := range objs {
			remaining = append(remaining, gvk.Kind+" "+o.GetName())
			if !o.GetDeletionTimestamp().IsZero() {
				continue
			}
			// Foreground: the workload object stays until its pods are gone,
			// so waiting for it is waiting for them.
			if err := r.Client.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationForeground)); client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, fmt.Errorf("delete %s %s: %w", gvk.Kind, o.GetName(), err)
			}
		}
		// Nothing else goes before the workloads have stopped.
		if len(remaining) > 0 && (gvk.Kind == "Deployment" || gvk.Kind == "StatefulSet") {
			break
		}
	}
	if len(remaining) > 0 {
		s.notReady(marinav1alpha1.ReasonDeleting, "waiting for "+summarize(remaining)+" to be deleted")
		return ctrl.Result{RequeueAfter: probeInterval}, nil
	}

	if dataStoreName(cp) != "" {
		problem, err := r.cleanupDataStore(ctx, cp)
		if err != nil {
			return ctrl.Result{}, err
		}
		if problem != "" {
			s.notReady(marinav1alpha1.ReasonDataStoreNotReady, problem)
			return ctrl.Result{RequeueAfter: r.RetryAfter}, nil
		}
	} else if ext := cp.Spec.Etcd.External; ext != nil && cp.Spec.DeletionPolicy == marinav1alpha1.DeletionPolicyDelete {
		cluster, res, err := r.externalEtcd(ctx, s, marinav1alpha1.ConditionEtcdReady)
		if err != nil {
			return ctrl.Result{}, err
		}
		if res.stop {
			s.notReady(meta.FindStatusCondition(cp.Status.Conditions, marinav1alpha1.ConditionEtcdReady).Reason,
				"cannot delete the keys under "+ext.KeyPrefix+" (deletionPolicy Delete): "+
					meta.FindStatusCondition(cp.Status.Conditions, marinav1alpha1.ConditionEtcdReady).Message+"; fix it, or set deletionPolicy Retain to keep the keys")
			return ctrl.Result{RequeueAfter: res.after}, nil
		}
		n, err := cluster.Purge(ctx, ext.KeyPrefix)
		if err != nil {
			s.notReady(marinav1alpha1.ReasonEtcdUnreachable, fmt.Sprintf(
				"cannot delete the keys under %s (deletionPolicy Delete): %v; fix it, or set deletionPolicy Retain to keep the keys", ext.KeyPrefix, err))
			return ctrl.Result{RequeueAfter: r.RetryAfter}, nil
		}
		log.FromContext(ctx).Info("Deleted the control plane's keys in external etcd", "prefix", ext.KeyPrefix, "keys", n)
	}

	r.Federation.Forget(cp.UID)
	r.forgetApplied(cp.UID)
	r.migrations.stop(cp.UID)
	r.etcdChecks.Delete(cp.UID)
	r.CRDs.Release(client.ObjectKeyFromObject(cp).String())
	forget(cp)
	before := cp.DeepCopy()
	controllerutil.RemoveFinalizer(cp, Finalizer)
	if err := r.Client.Patch(ctx, cp, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log.FromContext(ctx).Info("Control plane deleted")
	// The object is gone (or going): there is no status left to write.
	s.before.Status = cp.Status
	return ctrl.Result{}, nil
}

func summarize(items []string) string {
	if len(items) <= 3 {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:3], ", "), len(items)-3)
}
