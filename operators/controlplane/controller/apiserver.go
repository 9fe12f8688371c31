package controller

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/kubeconfig"
	"github.com/marina-platform/marina/operators/controlplane/component/policysync"
	"github.com/marina-platform/marina/operators/controlplane/component/registration"
)

// apiServerPort is the chart's default secure port of the federation API
// server, which the operator does not change.
const apiServerPort = 5443

// probeInterval is how soon a control plane that is nearly there (an API
// server that runs but does not answer yet, CRDs being established) is
// looked at again.
const probeInterval = 2 * time.Second

// rolloutRecheck is how soon a pending rollout is looked at again: a pod
// that starts failing (an image that cannot be pulled, a crash loop)
// changes no workload status, so the operator would otherwise not notice.
const rolloutRecheck = 10 * time.Second

// reconcileAPIServer writes the components' kubeconfigs, runs the API
// server and waits until it answers /readyz to the operator's admin
// credentials.
func (r *Reconciler) reconcileAPIServer(ctx context.Context, s *scope) (result, error) {
	const cond = marinav1alpha1.ConditionAPIServerReady
	cp := s.cp
	if err := r.applyComponentKubeconfigs(ctx, s); err != nil {
		return proceed, err
	}
	held, err := r.holdAPIServerRollout(ctx, s)
	if err != nil {
		return proceed, err
	}
	if err := r.applyParts(ctx, s, "apiserver"); err != nil {
		return proceed, err
	}
	cp.Status.Endpoint = r.endpoint(ctx, cp)

	if p, err := r.deploymentProblem(ctx, s, cp.Name+"-apiserver"); err != nil || p != "" {
		if err == nil {
			reason := marinav1alpha1.ReasonRolloutInProgress
			if rolloutStuck(p) {
				reason = marinav1alpha1.ReasonRolloutStuck
			}
			if held {
				p += "; " + heldMessage
			}
			s.blocked(cond, reason, p)
		}
		return retryAfter(rolloutRecheck), err
	}
	operatorKubeconfig, err := r.operatorKubeconfig(s, r.FederationURL(cp, apiServerPort))
	if err != nil {
		return proceed, err
	}
	fed, rc, err := r.Federation.Get(cp.UID, operatorKubeconfig)
	if err != nil {
		return proceed, err
	}
	if err := readyz(ctx, rc); err != nil {
		s.blocked(cond, marinav1alpha1.ReasonAPIServerUnavailable, fmt.Sprintf(
			"the API server's pods run but %s/readyz does not answer ready: %v", r.FederationURL(cp, apiServerPort), err))
		return retryAfter(probeInterval), nil
	}
	s.fed, s.fedREST = fed, rc
	if held {
		// It serves, so it is Ready; the reason says what waits.
		s.set(cond, metav1.ConditionTrue, marinav1alpha1.ReasonDegraded, "the API server answers at "+cp.Status.Endpoint+"; "+heldMessage)
		return proceed, nil
	}
	s.done(cond, "the API server answers at "+cp.Status.Endpoint)
	return proceed, nil
}

// deploymentServes says whether a Deployment of the control plane has an
// available replica: something answers behind its Service.
func (r *Reconciler) deploymentServes(ctx context.Context, cp *marinav1alpha1.ControlPlane, name string) (bool, error) {
	d := &appsv1.Deployment{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: name}, d)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return d.Status.AvailableReplicas > 0, nil
}

// deploymentProblem returns "" when Deployment name has rolled out, else
// what it waits for.
func (r *Reconciler) deploymentProblem(ctx context.Context, s *scope, name string) (string, error) {
	d := &appsv1.Deployment{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.cp.Namespace, Name: name}, d)
	if apierrors.IsNotFound(err) {
		return name + ": not created yet", nil
	}
	if err != nil {
		return "", err
	}
	if s.stale("Deployment", d) {
		return name + ": the change is not picked up yet", nil
	}
	p := rolloutProblem(d)
	if p != "" && !rolloutStuck(p) && d.Spec.Selector != nil {
		if why := r.podsStuck(ctx, d.Namespace, d.Spec.Selector.MatchLabels); why != "" {
			p = fmt.Sprintf("%s: %s; the running pods are kept", name, why)
		}
	}
	return p, nil
}

// endpoint is the URL users reach the API server at: the load balancer's
// address once it has one, else the Service's cluster DNS name.
func (r *Reconciler) endpoint(ctx context.Context, cp *marinav1alpha1.ControlPlane) string {
	if host := r.loadBalancerHost(ctx, cp); host != "" {
		return "https://" + net.JoinHostPort(host, strconv.Itoa(apiServerPort))
	}
	return ServiceURL(cp, apiServerPort)
}

// components that reach the API server with a kubeconfig of their own.
func kubeconfigComponents(cp *marinav1alpha1.ControlPlane) []string {
	parts := []string{"kube-controller-manager"}
	for _, o := range optionalComponents(cp) {
		if o.enabled {
			parts = append(parts, o.part)
		}
	}
	return parts
}

// applyComponentKubeconfigs writes each component's kubeconfig. It names
// the mounted certificate files instead of embedding them, so it never
// changes when cert-manager renews a certificate (see the chart's README).
func (r *Reconciler) applyComponentKubeconfigs(ctx context.Context, s *scope) error {
	cp := s.cp
	for _, part := range kubeconfigComponents(cp) {
		data, err := kubeconfig.Write(kubeconfig.Config{
			Cluster:  cp.Name,
			User:     part,
			Server:   ServiceURL(cp, apiServerPort),
			CAFile:   "/etc/marina/pki/client/ca.crt",
			CertFile: "/etc/marina/pki/client/tls.crt",
			KeyFile:  "/etc/marina/pki/client/tls.key",
		})
		if err != nil {
			return err
		}
		if err := r.applySecret(ctx, cp, cp.Name+"-"+part+"-kubeconfig", part, map[string][]byte{"kubeconfig": data}); err != nil {
			return err
		}
	}
	return nil
}

// applySecret applies a Secret of the operator's own.
func (r *Reconciler) applySecret(ctx context.Context, cp *marinav1alpha1.ControlPlane, name, component string, data map[string][]byte) error {
	sec := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: cp.Namespace, Name: name, Labels: ownLabels(cp, component)},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(sec)
	if err != nil {
		return err
	}
	return r.apply(ctx, cp, &unstructured.Unstructured{Object: m})
}

// adminKubeconfig embeds the admin certificate, for the admin kubeconfig
// Secret users get.
func (r *Reconciler) adminKubeconfig(s *scope, server string) ([]byte, error) {
	return embeddedKubeconfig(s, s.cp.Name+"-admin-tls", "admin", server)
}

// operatorKubeconfig embeds the operator's own certificate, for its client
// of the federation API server.
func (r *Reconciler) operatorKubeconfig(s *scope, server string) ([]byte, error) {
	return embeddedKubeconfig(s, s.cp.Name+"-operator-tls", OperatorUser, server)
}

// OperatorUser is the operator's user in the federation API server (its
// certificate's common name in charts/controlplane's certificates.yaml).
const OperatorUser = "marina:controlplane-operator"

func embeddedKubeconfig(s *scope, secret, user, server string) ([]byte, error) {
	sec, ok := s.secrets[secret]
	if !ok {
		return nil, fmt.Errorf("secret %s is missing", secret)
	}
	return kubeconfig.Write(kubeconfig.Config{
		Cluster:  s.cp.Name,
		User:     user,
		Server:   server,
		CAData:   sec.Data["ca.crt"],
		CertData: sec.Data[corev1.TLSCertKey],
		KeyData:  sec.Data[corev1.TLSPrivateKeyKey],
	})
}

// reconcileAdminKubeconfig publishes the admin kubeconfig for users and
// references it in the status. It is rewritten when the admin certificate
// is renewed.
func (r *Reconciler) reconcileAdminKubeconfig(ctx context.Context, s *scope) (result, error) {
	cp := s.cp
	data, err := r.adminKubeconfig(s, cp.Status.Endpoint)
	if err != nil {
		return proceed, err
	}
	name := cp.Name + "-admin-kubeconfig"
	if err := r.applySecret(ctx, cp, name, "admin", map[string][]byte{"kubeconfig": data}); err != nil {
		return proceed, err
	}
	cp.Status.AdminKubeconfigSecretRef = &marinav1alpha1.SecretKeyReference{Name: name, Key: "kubeconfig"}
	return proceed, nil
}

// reconcileRegistration lets the register operator in: the user
// registration.User gets the rights to join and unjoin members in the
// federation API server and nothing else, and its kubeconfig is published
// for the register operator, which never holds the admin kubeconfig.
func (r *Reconciler) reconcileRegistration(ctx context.Context, s *scope) (result, error) {
	cp := s.cp
	if err := r.applyFederation(ctx, s, namespace(clusterNamespace)); err != nil {
		return proceed, err
	}
	if err := registration.Deploy(ctx, s.fed, FieldManager, registration.User, federationLabels(cp, "registration")); err != nil {
		return proceed, err
	}
	ref, err := r.publishKubeconfig(ctx, s, "registration", registration.User, RegistrationKubeconfigSecretName(cp))
	if err != nil {
		return proceed, err
	}
	cp.Status.RegistrationKubeconfigSecretRef = ref
	return proceed, nil
}

// reconcileSyncAccess lets the sync operator in: the user policysync.User
// gets the rights to write the engine's policies (and what an
// administrator adds there), and its kubeconfig is published for the sync
// operator, which never holds the admin kubeconfig.
func (r *Reconciler) reconcileSyncAccess(ctx context.Context, s *scope) (result, error) {
	cp := s.cp
	if err := policysync.Deploy(ctx, s.fed, FieldManager, policysync.User, federationLabels(cp, "sync")); err != nil {
		return proceed, err
	}
	ref, err := r.publishKubeconfig(ctx, s, "sync", policysync.User, SyncKubeconfigSecretName(cp))
	if err != nil {
		return proceed, err
	}
	cp.Status.SyncKubeconfigSecretRef = ref
	return proceed, nil
}

// publishKubeconfig writes the Secret name with a kubeconfig for user,
// from the certificate of purpose (charts/controlplane's certificates),
// and returns the reference the status gives it.
func (r *Reconciler) publishKubeconfig(ctx context.Context, s *scope, purpose, user, name string) (*marinav1alpha1.SecretKeyReference, error) {
	cp := s.cp
	data, err := embeddedKubeconfig(s, cp.Name+"-"+purpose+"-tls", user, cp.Status.Endpoint)
	if err != nil {
		return nil, err
	}
	if err := r.applySecret(ctx, cp, name, purpose, map[string][]byte{"kubeconfig": data}); err != nil {
		return nil, err
	}
	return &marinav1alpha1.SecretKeyReference{Name: name, Key: "kubeconfig"}, nil
}

// SyncKubeconfigSecretName is the Secret of the sync operator's kubeconfig.
func SyncKubeconfigSecretName(cp *marinav1alpha1.ControlPlane) string {
	return cp.Name + "-sync-kubeconfig"
}

// RegistrationKubeconfigSecretName is the Secret of the register
// operator's kubeconfig.
func RegistrationKubeconfigSecretName(cp *marinav1alpha1.ControlPlane) string {
	return cp.Name + "-registration-kubeconfig"
}

const heldMessage = "a change to its pods (a renewed certificate, new settings) is held while Vault does not answer, as new pods could not start their KMS plugin: it rolls once encryption is healthy again"

// holdAPIServerRollout keeps the API server's running pods while
// encryption is degraded: new pods would wait forever for a KMS plugin that
// cannot reach Vault, and a rolling update would then leave fewer serving.
// It marks the API server's Deployment as held for this pass (applyParts
// skips it; prune keeps it) when the rendered one is not what the operator
// last applied, and says whether it did.
func (r *Reconciler) holdAPIServerRollout(ctx context.Context, s *scope) (bool, error) {
	if !s.degraded {
		return false, nil
	}
	name := s.cp.Name + "-apiserver"
	live := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.cp.Namespace, Name: name}, live); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	for _, obj := range s.objects {
		if obj.GetKind() != "Deployment" || obj.GetName() != name {
			continue
		}
		if same, err := r.sameAsApplied(s.cp, obj, live); err != nil || same {
			return false, err
		}
		s.held = map[string]bool{"Deployment/" + name: true}
		return true, nil
	}
	return false, nil
}

// sameAsApplied says whether a rendered workload is what the operator last
// applied. Without a record (the operator restarted) it compares what
// rolls pods in practice: the pod template's annotations (the checksums of
// certificates and configuration) and every container's and init
// container's (the KMS plugin's) name, image and arguments.
func (r *Reconciler) sameAsApplied(cp *marinav1alpha1.ControlPlane, obj *unstructured.Unstructured, live *appsv1.Deployment) (bool, error) {
	key, sum, err := r.intent(cp, obj.DeepCopy())
	if err != nil {
		return false, err
	}
	if v, ok := r.applied.Load(key); ok {
		return v.(appliedObject).intent == sum, nil
	}
	want := &appsv1.Deployment{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, want); err != nil {
		return false, err
	}
	if !maps.Equal(want.Spec.Template.Annotations, live.Spec.Template.Annotations) {
		return false, nil
	}
	type container struct {
		name, image string
		args        string
	}
	of := func(pod corev1.PodSpec) []container {
		var out []container
		for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
			out = append(out, container{c.Name, c.Image, strings.Join(c.Args, "\x00")})
		}
		return out
	}
	return slices.Equal(of(want.Spec.Template.Spec), of(live.Spec.Template.Spec)), nil
}
