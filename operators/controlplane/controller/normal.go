package controller

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/urlpolicy"
	"github.com/marina-platform/marina/operators/controlplane/engine"
)

type stage struct {
	name string
	run  func(context.Context, *scope) (result, error)
}

// reconcileNormal runs the stages in order until one stops.
func (r *Reconciler) reconcileNormal(ctx context.Context, s *scope) (ctrl.Result, error) {
	cp := s.cp
	if cp.Spec.DataCenter != r.DataCenter {
		s.notReady(marinav1alpha1.ReasonDataCenterMismatch, fmt.Sprintf(
			"spec.dataCenter is %q but this management cluster's operator serves %q; create the ControlPlane in %s's management cluster",
			cp.Spec.DataCenter, r.DataCenter, cp.Spec.DataCenter))
		s.foreign = true
		r.migrations.stop(cp.UID)
		return ctrl.Result{}, nil
	}
	if err := r.addFinalizer(ctx, cp); err != nil {
		return ctrl.Result{}, fmt.Errorf("add finalizer: %w", err)
	}
	// Every pass over this spec says so, Ready or not, so that tools
	// reading kstatus (Argo CD, Flux) see a blocked ControlPlane as
	// observed and read its conditions, instead of waiting forever. (After
	// the finalizer's patch, which reads the object back, status included.)
	cp.Status.ObservedGeneration = cp.Generation
	if cp.Spec.Suspend {
		r.migrations.stop(cp.UID)
		s.notReady(marinav1alpha1.ReasonSuspended, "spec.suspend is true: nothing is created, changed or deleted; running components keep running")
		return ctrl.Result{}, nil
	}

	for _, st := range []stage{
		{"prerequisites", r.checkPriorityClasses},
		{"urls", r.checkURLs},
		{"data store", r.loadDataStore},
		{"certificates", r.reconcileCertificates},
		{"etcd", r.reconcileEtcd},
		{"encryption", r.reconcileEncryption},
		{"api server", r.reconcileAPIServer},
		{"crds", r.reconcileCRDs},
		{"components", r.reconcileComponents},
		{"admin kubeconfig", r.reconcileAdminKubeconfig},
		{"member registration access", r.reconcileRegistration},
		{"policy sync access", r.reconcileSyncAccess},
		{"storage migration", r.reconcileMigration},
		{"prune", r.prune},
	} {
		res, err := st.run(ctx, s)
		if err != nil {
			s.notReady(marinav1alpha1.ReasonStageFailed, fmt.Sprintf("%s: %v (retried with backoff)", st.name, err))
			return ctrl.Result{}, fmt.Errorf("%s: %w", st.name, err)
		}
		if res.stop {
			after := res.after
			if s.requeueAfter > 0 && (after == 0 || s.requeueAfter < after) {
				after = s.requeueAfter
			}
			return ctrl.Result{RequeueAfter: after}, nil
		}
	}

	msg := fmt.Sprintf("control plane %s runs engine %s at %s", cp.Name, cp.Spec.Version, cp.Status.Endpoint)
	if s.degraded {
		// It serves, so it is Ready; the reason says what is missing.
		c := meta.FindStatusCondition(cp.Status.Conditions, marinav1alpha1.ConditionEncryptionReady)
		s.set(marinav1alpha1.ConditionReady, metav1.ConditionTrue, marinav1alpha1.ReasonDegraded, msg+"; encryption is degraded: "+c.Message)
	} else {
		s.set(marinav1alpha1.ConditionReady, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded, msg)
	}
	cp.Status.Version = cp.Spec.Version
	log.FromContext(ctx).V(1).Info("Control plane is ready", "endpoint", cp.Status.Endpoint)
	return ctrl.Result{RequeueAfter: s.requeueAfter}, nil
}

// checkPriorityClasses makes sure every PriorityClass the pods will name
// exists: a pod naming a missing one is rejected by admission, so the
// control plane would silently never start.
func (r *Reconciler) checkPriorityClasses(ctx context.Context, s *scope) (result, error) {
	for _, ref := range priorityClassRefs(s.cp) {
		err := r.APIReader.Get(ctx, client.ObjectKey{Name: ref.name}, &schedulingv1.PriorityClass{})
		if apierrors.IsNotFound(err) {
			msg := fmt.Sprintf("PriorityClass %q named in %s does not exist; create it or name an existing one", ref.name, ref.field)
			s.notReady(marinav1alpha1.ReasonPriorityClassNotFound, msg)
			return retryAfter(r.RetryAfter), nil
		}
		if err != nil {
			return proceed, fmt.Errorf("read PriorityClass %s: %w", ref.name, err)
		}
	}
	return proceed, nil
}

// checkURLs refuses, before anything is made, a spec whose URLs the
// platform team does not let the operator reach (--allowed-url-hosts), or
// whose Vault would be reached over plain http (--vault-plain-http-hosts):
// the operator fetches them from inside the management cluster.
func (r *Reconciler) checkURLs(_ context.Context, s *scope) (result, error) {
	for _, u := range tenantURLs(s.cp) {
		err := r.URLPolicy.Check(u.url, u.secret)
		if err == nil {
			continue
		}
		reason, setting := marinav1alpha1.ReasonURLNotAllowed, "operators.controlplane.allowedURLHosts"
		if errors.Is(err, urlpolicy.ErrInsecure) {
			reason, setting = marinav1alpha1.ReasonInsecureURL, "operators.controlplane.vaultPlainHTTPHosts"
		}
		s.notReady(reason, fmt.Sprintf("%s: %v; change the URL, or ask the platform team to allow it (the marina chart's %s)", u.field, err, setting))
		return retryAfter(r.RetryAfter), nil
	}
	return proceed, nil
}

// tenantURL is a URL of the spec the operator reaches; secret when the
// connection carries credentials or keys.
type tenantURL struct {
	field, url string
	secret     bool
}

func tenantURLs(cp *marinav1alpha1.ControlPlane) []tenantURL {
	var urls []tenantURL
	if h := cp.Spec.CRDs.HTTP; h != nil {
		urls = append(urls, tenantURL{field: "spec.crds.http.url", url: h.URL})
		if h.ProxyURL != "" {
			urls = append(urls, tenantURL{field: "spec.crds.http.proxyURL", url: h.ProxyURL})
		}
	} else {
		urls = append(urls, tenantURL{field: "the engine's release CRDs (spec.crds.http is not set)", url: engine.ReleaseCRDsURL(cp.Spec.Version)})
	}
	if enc := cp.Spec.Encryption; enc != nil {
		urls = append(urls, tenantURL{field: "spec.encryption.kms.vault.address", url: enc.KMS.Vault.Address, secret: true})
	}
	return urls
}

type fieldRef struct{ name, field string }

func priorityClassRefs(cp *marinav1alpha1.ControlPlane) []fieldRef {
	var refs []fieldRef
	add := func(name, field string) {
		if name != "" {
			refs = append(refs, fieldRef{name, field})
		}
	}
	add(cp.Spec.PriorityClassName, "spec.priorityClassName")
	if l := cp.Spec.Etcd.Local; l != nil {
		add(l.PriorityClassName, "spec.etcd.local.priorityClassName")
	}
	c := &cp.Spec.Components
	add(c.APIServer.PriorityClassName, "spec.components.apiServer.priorityClassName")
	add(c.KubeControllerManager.PriorityClassName, "spec.components.kubeControllerManager.priorityClassName")
	for _, o := range optionalComponents(cp) {
		if o.enabled {
			add(o.spec.PriorityClassName, "spec.components."+o.key+".priorityClassName")
		}
	}
	return refs
}

// optionalComponent is one of the engine's components that can be off.
type optionalComponent struct {
	key     string // the chart's and the spec's key, such as aggregatedAPIServer
	part    string // the object name suffix and component label, such as aggregated-apiserver
	enabled bool
	spec    marinav1alpha1.ComponentSpec
}

func optionalComponents(cp *marinav1alpha1.ControlPlane) []optionalComponent {
	c := &cp.Spec.Components
	on := func(o marinav1alpha1.OptionalComponentSpec, def bool) bool {
		if o.Enabled == nil {
			return def
		}
		return *o.Enabled
	}
	return []optionalComponent{
		{"aggregatedAPIServer", "aggregated-apiserver", on(c.AggregatedAPIServer, true), c.AggregatedAPIServer.ComponentSpec},
		{"controllerManager", "controller-manager", on(c.ControllerManager, true), c.ControllerManager.ComponentSpec},
		{"scheduler", "scheduler", on(c.Scheduler.OptionalComponentSpec, true), c.Scheduler.ComponentSpec},
		{"webhook", "webhook", on(c.Webhook, true), c.Webhook.ComponentSpec},
		{"descheduler", "descheduler", on(c.Descheduler, false), c.Descheduler.ComponentSpec},
		{"metricsAdapter", "metrics-adapter", on(c.MetricsAdapter, true), c.MetricsAdapter.ComponentSpec},
		{"search", "search", on(c.Search, true), c.Search.ComponentSpec},
	}
}

// secretData reads a user's Secret (never cached: the operator does not
// watch Secrets it did not make) and checks it has keys. The error is nil
// with a non-empty problem when the Secret is missing or incomplete; reason
// and problem then go into a condition.
func (r *Reconciler) secretData(ctx context.Context, ns, name, field string, keys ...string) (data map[string][]byte, reason, problem string, err error) {
	return readSecretData(ctx, r.APIReader, ns, name, field, keys...)
}

// readSecretData is secretData with the reader to use.
func readSecretData(ctx context.Context, reader client.Reader, ns, name, field string, keys ...string) (data map[string][]byte, reason, problem string, err error) {
	sec := &corev1.Secret{}
	err = reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, sec)
	if apierrors.IsNotFound(err) {
		return nil, marinav1alpha1.ReasonSecretNotFound,
			fmt.Sprintf("Secret %s/%s named in %s does not exist; create it with keys %v", ns, name, field, keys), nil
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("read Secret %s/%s: %w", ns, name, err)
	}
	for _, k := range keys {
		if len(sec.Data[k]) == 0 {
			return nil, marinav1alpha1.ReasonInvalidSecret,
				fmt.Sprintf("Secret %s/%s named in %s has no key %s (it needs %v)", ns, name, field, k, keys), nil
		}
	}
	return sec.Data, "", "", nil
}
