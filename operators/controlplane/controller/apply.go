package controller

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/operators/controlplane/render"
)

// render reads the control plane's own Secrets and renders the chart with
// checksums of them.
func (r *Reconciler) render(ctx context.Context, s *scope) error {
	cp := s.cp
	list := &corev1.SecretList{}
	if err := r.Client.List(ctx, list, client.InNamespace(cp.Namespace), client.MatchingLabels{
		labelInstance: cp.Name, labelManagedBy: render.ManagedBy,
	}); err != nil {
		return fmt.Errorf("list Secrets of control plane %s: %w", cp.Name, err)
	}
	s.secrets = make(map[string]*corev1.Secret, len(list.Items))
	for i := range list.Items {
		s.secrets[list.Items[i].Name] = &list.Items[i]
	}

	opts := render.Options{
		IssuerRef:              s.issuer,
		Images:                 render.ImagesFor(cp.Spec.Version),
		EndpointHost:           r.loadBalancerHost(ctx, cp),
		KMSPluginImage:         r.KMSPluginImage,
		EncryptionConfigSecret: EncryptionConfigSecretName(cp),
		ClusterDomain:          r.ClusterDomain,
		EtcdIssuerLegacy:       r.etcdIssuerLegacy(ctx, cp),
		OperatorNamespace:      r.OperatorNamespace,
		PodCIDRs:               r.PodCIDRs,
	}
	if dataStoreName(cp) != "" && s.dataStore == nil {
		// Without it the chart would see no endpoints and run local etcd.
		return fmt.Errorf("render: DataStore %s is not loaded", dataStoreName(cp))
	}
	if ds := s.dataStore; ds != nil {
		opts.DataStore = &render.ExternalEtcdValues{
			Endpoints:     ds.Spec.Endpoints,
			TLSSecretName: EtcdClientSecretName(cp),
			KeyPrefix:     ds.KeyPrefixFor(string(cp.UID)),
			Shared:        true,
		}
	}
	if enc := cp.Spec.Encryption; enc != nil {
		// New API server pods load a changed list of encrypted resources at
		// start, so that once the rollout is done every API server
		// encrypts them and the migration's rewrites take effect. The
		// file's automatic reload alone leaves no way to tell when.
		opts.ComponentChecksums = map[string]map[string]string{
			render.ComponentAPIServer: {"encryption": encryptionChecksum(enc.Resources)},
		}
	}
	objs, err := r.Chart.Render(cp.Namespace, render.ValuesFor(cp, opts))
	if err != nil {
		return err
	}
	// Each pod rolls when a certificate it mounts is renewed, and only then.
	if err := render.AnnotateCertificates(objs, s.secrets); err != nil {
		return err
	}
	s.objects = objs
	return nil
}

// etcdIssuerLegacy says whether local etcd's server certificate exists and
// is signed by another issuer than the control plane's own etcd CA: its
// members run trusting that issuer's CA, so the certificates stay with it
// (see certificates.etcdOwnCA in the chart).
func (r *Reconciler) etcdIssuerLegacy(ctx context.Context, cp *marinav1alpha1.ControlPlane) bool {
	if cp.Spec.Etcd.Local == nil {
		return false
	}
	cert := newUnstructured(certificateGVK)
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: cp.Name + "-etcd-server"}, cert); err != nil {
		return false
	}
	issuer, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "name")
	return issuer != cp.Name+"-etcd-ca"
}

// loadBalancerHost is the address a LoadBalancer gave the API server's
// Service, which then goes into the serving certificate and the endpoint.
func (r *Reconciler) loadBalancerHost(ctx context.Context, cp *marinav1alpha1.ControlPlane) string {
	if cp.Spec.Components.APIServer.Service.Type != corev1.ServiceTypeLoadBalancer {
		return ""
	}
	svc := &corev1.Service{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: cp.Name + "-apiserver"}, svc); err != nil {
		return ""
	}
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.Hostname != "" {
			return in.Hostname
		}
		if in.IP != "" {
			return in.IP
		}
	}
	return ""
}

// apply server-side applies obj as the operator, owned by the ControlPlane,
// so that garbage collection follows the ControlPlane and changes by others
// to the operator's fields are taken back.
func (r *Reconciler) apply(ctx context.Context, cp *marinav1alpha1.ControlPlane, obj *unstructured.Unstructured) error {
	key, sum, err := r.intent(cp, obj)
	if err != nil {
		return err
	}
	if live := r.appliedUnchanged(ctx, key, sum); live != nil {
		// What this apply would return: the callers read the generation.
		obj.Object = live.Object
		applies.WithLabelValues(cp.Namespace, cp.Name, "unchanged").Inc()
		return nil
	}
	applies.WithLabelValues(cp.Namespace, cp.Name, "applied").Inc()
	if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		r.applied.Delete(key)
		return fmt.Errorf("apply %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	r.applied.Store(key, appliedObject{intent: sum, resourceVersion: obj.GetResourceVersion()})
	return nil
}

// intent makes obj what apply sends (owned by the ControlPlane, no managed
// fields or resourceVersion: apply takes the whole intent, and what a
// previous apply set and this one omits is removed) and returns its key
// and hash.
func (r *Reconciler) intent(cp *marinav1alpha1.ControlPlane, obj *unstructured.Unstructured) (appliedKey, [32]byte, error) {
	if err := controllerutil.SetControllerReference(cp, obj, r.Client.Scheme()); err != nil {
		return appliedKey{}, [32]byte{}, err
	}
	obj.SetManagedFields(nil)
	obj.SetResourceVersion("")
	data, err := json.Marshal(obj.Object)
	if err != nil {
		return appliedKey{}, [32]byte{}, err
	}
	key := appliedKey{cp: cp.UID, gvk: obj.GroupVersionKind(), namespace: obj.GetNamespace(), name: obj.GetName()}
	return key, sha256.Sum256(data), nil
}

// appliedKey names an object the operator applied for a control plane.
type appliedKey struct {
	cp              types.UID
	gvk             schema.GroupVersionKind
	namespace, name string
}

// appliedObject is what the operator last applied to an object and the
// object's resourceVersion right after.
type appliedObject struct {
	intent          [32]byte
	resourceVersion string
}

// appliedUnchanged returns the cached object when applying intent again
// would change nothing: the operator applied this very intent, and nobody
// (no user, no controller, not even a status update) wrote the object
// since. Any write in between makes it apply again, which also takes back
// changes others made to the operator's fields. It never reads past the
// cache, so an unchanged pass costs no request.
func (r *Reconciler) appliedUnchanged(ctx context.Context, key appliedKey, intent [32]byte) *unstructured.Unstructured {
	v, ok := r.applied.Load(key)
	if !ok || v.(appliedObject).intent != intent {
		return nil
	}
	live, err := r.cached(ctx, key)
	if err != nil || live.GetResourceVersion() != v.(appliedObject).resourceVersion || !live.GetDeletionTimestamp().IsZero() {
		return nil
	}
	return live
}

// cached reads an object from the manager's cache, as the typed object
// the cache holds when the scheme knows its kind.
func (r *Reconciler) cached(ctx context.Context, key appliedKey) (*unstructured.Unstructured, error) {
	nn := client.ObjectKey{Namespace: key.namespace, Name: key.name}
	typed, err := r.Client.Scheme().New(key.gvk)
	if err != nil {
		u := newUnstructured(key.gvk)
		return u, r.Client.Get(ctx, nn, u)
	}
	obj, ok := typed.(client.Object)
	if !ok {
		return nil, fmt.Errorf("%s is not an object", key.gvk)
	}
	if err := r.Client.Get(ctx, nn, obj); err != nil {
		return nil, err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(key.gvk)
	return u, nil
}

// forgetApplied drops what is remembered of a deleted control plane's
// objects.
func (r *Reconciler) forgetApplied(uid types.UID) {
	r.applied.Range(func(k, _ any) bool {
		if k.(appliedKey).cp == uid {
			r.applied.Delete(k)
		}
		return true
	})
}

// applyParts applies the rendered objects of the given components (label
// app.kubernetes.io/component), Certificates excepted.
func (r *Reconciler) applyParts(ctx context.Context, s *scope, parts ...string) error {
	for _, obj := range s.objects {
		if obj.GroupVersionKind() == certificateGVK || !slices.Contains(parts, obj.GetLabels()[labelComponent]) ||
			s.held[obj.GetKind()+"/"+obj.GetName()] {
			continue
		}
		if err := r.apply(ctx, s.cp, obj); err != nil {
			return err
		}
		s.applied[obj.GetKind()+"/"+obj.GetName()] = obj.GetGeneration()
	}
	return nil
}

// ownLabels are the labels of objects the operator makes outside the chart,
// matching the chart's, so one selector finds everything.
func ownLabels(cp *marinav1alpha1.ControlPlane, component string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/part-of":      "marina",
		labelManagedBy:                   render.ManagedBy,
		labelInstance:                    cp.Name,
		labelComponent:                   component,
		marinav1alpha1.LabelControlPlane: cp.Name,
		marinav1alpha1.LabelDataCenter:   cp.Spec.DataCenter,
	}
}

// stuckMarker ends the problem of a rollout that missed its progress
// deadline: its pods will not come up without a person (a missing image, a
// crash loop, a failing probe).
const stuckMarker = "the rollout missed its progress deadline"

// podStuckMarker is in the problem of a rollout whose new pods cannot start
// as they are (podsStuck), long before its progress deadline.
const podStuckMarker = "will not start without a fix"

// rolloutStuck says whether a rollout problem is one a person must fix.
func rolloutStuck(problem string) bool {
	return strings.Contains(problem, stuckMarker) || strings.Contains(problem, podStuckMarker)
}

// stuckWaiting are the reasons a container waits with that only a change
// (of the image, the configuration, the program) ends: the back-off states
// kubelet enters after failing again, and the failures no retry mends.
// A first ErrImagePull or a container that could not be created once may
// be transient, so they are not among them.
var stuckWaiting = []string{"ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "CrashLoopBackOff"}

// podsStuck returns, for a workload that is not rolled out, why its pods
// cannot start (a container of one of them waiting for a reason in
// stuckWaiting), or "". Pods are read only while a rollout is pending,
// never at steady state. The container's own termination message is left
// out: a program may print anything there.
func (r *Reconciler) podsStuck(ctx context.Context, namespace string, selector map[string]string) string {
	pods := &corev1.PodList{}
	if err := r.APIReader.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabels(selector)); err != nil {
		return ""
	}
	slices.SortFunc(pods.Items, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	for _, pod := range pods.Items {
		statuses := append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...)
		for _, c := range statuses {
			w := c.State.Waiting
			if w == nil || !slices.Contains(stuckWaiting, w.Reason) {
				continue
			}
			msg := fmt.Sprintf("pod %s %s: container %s is waiting with %s", pod.Name, podStuckMarker, c.Name, w.Reason)
			if w.Message != "" {
				msg += ": " + truncate(w.Message, 300)
			}
			return msg
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// rolloutProblem returns "" when a Deployment runs its current template on
// every replica and all are available, else how far it is.
func rolloutProblem(d *appsv1.Deployment) string {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" &&
			d.Status.ObservedGeneration >= d.Generation {
			return fmt.Sprintf("%s: %s: %s; look at its pods' events", d.Name, stuckMarker, c.Message)
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	switch {
	case st.ObservedGeneration < d.Generation:
		return fmt.Sprintf("%s: the change is not picked up yet", d.Name)
	case st.UpdatedReplicas < want:
		return fmt.Sprintf("%s: %d of %d replicas updated", d.Name, st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		return fmt.Sprintf("%s: %d old replicas still running", d.Name, st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < want:
		return fmt.Sprintf("%s: %d of %d replicas available", d.Name, st.AvailableReplicas, want)
	}
	return ""
}

// statefulSetProblem is rolloutProblem for a StatefulSet.
func statefulSetProblem(s *appsv1.StatefulSet) string {
	want := int32(1)
	if s.Spec.Replicas != nil {
		want = *s.Spec.Replicas
	}
	st := s.Status
	switch {
	case st.ObservedGeneration < s.Generation:
		return fmt.Sprintf("%s: the change is not picked up yet", s.Name)
	case st.UpdatedReplicas < want || st.CurrentRevision != st.UpdateRevision:
		return fmt.Sprintf("%s: %d of %d members updated", s.Name, st.UpdatedReplicas, want)
	case st.ReadyReplicas < want:
		return fmt.Sprintf("%s: %d of %d members ready", s.Name, st.ReadyReplicas, want)
	}
	return ""
}
