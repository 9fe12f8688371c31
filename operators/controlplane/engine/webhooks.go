package engine

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	admissionregistrationv1ac "k8s.io/client-go/applyconfigurations/admissionregistration/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
)

// The names of the webhook configurations, as the engine's installers name
// them: tools and runbooks written for the engine find them there.
const (
	MutatingWebhookConfigurationName   = "mutating-config"
	ValidatingWebhookConfigurationName = "validating-config"
)

// Webhook is one admission webhook of karmada-webhook: it is called for
// Operations on Resources of Group at Scope, at Path.
type Webhook struct {
	Name       string
	Mutating   bool
	Operations []admissionregistrationv1.OperationType
	Group      string
	Resources  string
	Scope      admissionregistrationv1.ScopeType
	Path       string
	// TimeoutSeconds: 3 unless the webhook needs longer.
	TimeoutSeconds int32
	SideEffects    admissionregistrationv1.SideEffectClass
	// ObjectSelector limits the webhook to labelled objects.
	ObjectSelector *metav1.LabelSelector
}

var (
	createUpdate = []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	create       = []admissionregistrationv1.OperationType{admissionregistrationv1.Create}
	none         = admissionregistrationv1.SideEffectClassNone
)

const (
	namespaced = admissionregistrationv1.NamespacedScope
	cluster    = admissionregistrationv1.ClusterScope
)

// webhooks are the 22 webhooks of the engine's deploy manifests
// (artifacts/deploy/webhook-configuration.yaml), the same at v1.16.8,
// v1.17.5 and v1.18.2: one for every path karmada-webhook serves, /convert
// aside (the CRD bundle's conversion patches name that one). karmadactl
// init and karmada-operator register the same set without
// clustertaintpolicy, which leaves ClusterTaintPolicy unvalidated.
var webhooks = []Webhook{
	{Name: "propagationpolicy.karmada.io", Mutating: true, Operations: createUpdate, Group: "policy.karmada.io", Resources: "propagationpolicies", Scope: namespaced, Path: "/mutate-propagationpolicy"},
	{Name: "clusterpropagationpolicy.karmada.io", Mutating: true, Operations: createUpdate, Group: "policy.karmada.io", Resources: "clusterpropagationpolicies", Scope: cluster, Path: "/mutate-clusterpropagationpolicy"},
	{Name: "overridepolicy.karmada.io", Mutating: true, Operations: createUpdate, Group: "policy.karmada.io", Resources: "overridepolicies", Scope: namespaced, Path: "/mutate-overridepolicy"},
	// Gives every binding its permanent ID; without it, the bindings of two
	// workloads are mistaken for one another and one workload is deleted.
	{Name: "resourcebinding.karmada.io", Mutating: true, Operations: create, Group: "work.karmada.io", Resources: "resourcebindings", Scope: namespaced, Path: "/mutate-resourcebinding"},
	{Name: "clusterresourcebinding.karmada.io", Mutating: true, Operations: create, Group: "work.karmada.io", Resources: "clusterresourcebindings", Scope: cluster, Path: "/mutate-clusterresourcebinding"},
	{Name: "work.karmada.io", Mutating: true, Operations: createUpdate, Group: "work.karmada.io", Resources: "works", Scope: namespaced, Path: "/mutate-work"},
	{Name: "autoscaling.karmada.io", Mutating: true, Operations: createUpdate, Group: "autoscaling.karmada.io", Resources: "federatedhpas", Scope: namespaced, Path: "/mutate-federatedhpa"},
	{Name: "multiclusterservice.karmada.io", Mutating: true, Operations: createUpdate, Group: "networking.karmada.io", Resources: "multiclusterservices", Scope: namespaced, Path: "/mutate-multiclusterservice"},

	{Name: "propagationpolicy.karmada.io", Operations: createUpdate, Group: "policy.karmada.io", Resources: "propagationpolicies", Scope: namespaced, Path: "/validate-propagationpolicy"},
	{Name: "clusterpropagationpolicy.karmada.io", Operations: createUpdate, Group: "policy.karmada.io", Resources: "clusterpropagationpolicies", Scope: cluster, Path: "/validate-clusterpropagationpolicy"},
	{Name: "overridepolicy.karmada.io", Operations: createUpdate, Group: "policy.karmada.io", Resources: "overridepolicies", Scope: namespaced, Path: "/validate-overridepolicy"},
	{Name: "clusteroverridepolicy.karmada.io", Operations: createUpdate, Group: "policy.karmada.io", Resources: "clusteroverridepolicies", Scope: cluster, Path: "/validate-clusteroverridepolicy"},
	{Name: "config.karmada.io", Operations: createUpdate, Group: "config.karmada.io", Resources: "resourceinterpreterwebhookconfigurations", Scope: cluster, Path: "/validate-resourceinterpreterwebhookconfiguration"},
	// Checks the customization's Lua scripts, which takes longer.
	{Name: "resourceinterpretercustomization.karmada.io", Operations: createUpdate, Group: "config.karmada.io", Resources: "resourceinterpretercustomizations", Scope: cluster, Path: "/validate-resourceinterpretercustomization", TimeoutSeconds: 10},
	{Name: "federatedresourcequota.karmada.io", Operations: createUpdate, Group: "policy.karmada.io", Resources: "federatedresourcequotas", Scope: namespaced, Path: "/validate-federatedresourcequota"},
	{Name: "multiclusteringress.karmada.io", Operations: createUpdate, Group: "networking.karmada.io", Resources: "multiclusteringresses", Scope: namespaced, Path: "/validate-multiclusteringress"},
	{Name: "federatedhpa.karmada.io", Operations: createUpdate, Group: "autoscaling.karmada.io", Resources: "federatedhpas", Scope: namespaced, Path: "/validate-federatedhpa"},
	{Name: "cronfederatedhpa.karmada.io", Operations: createUpdate, Group: "autoscaling.karmada.io", Resources: "cronfederatedhpas", Scope: namespaced, Path: "/validate-cronfederatedhpa"},
	{Name: "multiclusterservice.karmada.io", Operations: createUpdate, Group: "networking.karmada.io", Resources: "multiclusterservices", Scope: namespaced, Path: "/validate-multiclusterservice"},
	// Refuses to delete any object labelled as protected.
	{Name: "resourcedeletionprotection.karmada.io", Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Delete}, Group: "*", Resources: "*", Scope: admissionregistrationv1.AllScopes, Path: "/validate-resourcedeletionprotection",
		ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "resourcetemplate.karmada.io/deletion-protected", Operator: metav1.LabelSelectorOpExists}}}},
	// Updates the scheduler's quota bookkeeping, so it must not run on a dry run.
	{Name: "resourcebinding.karmada.io", Operations: createUpdate, Group: "work.karmada.io", Resources: "resourcebindings", Scope: namespaced, Path: "/validate-resourcebinding", SideEffects: admissionregistrationv1.SideEffectClassNoneOnDryRun},
	{Name: "clustertaintpolicy.karmada.io", Operations: createUpdate, Group: "policy.karmada.io", Resources: "clustertaintpolicies", Scope: cluster, Path: "/validate-clustertaintpolicy"},
}

// WebhookConfigurations returns the mutating and validating configurations
// of a release's webhooks, calling karmada-webhook at baseURL (such as
// https://fra1-webhook.team-a.svc:443) and trusting caBundle (PEM). Every
// webhook fails closed, as the engine's installers register them: an object
// the webhook cannot check is not stored.
func (r Release) WebhookConfigurations(baseURL string, caBundle []byte, labels map[string]string) (
	*admissionregistrationv1ac.MutatingWebhookConfigurationApplyConfiguration,
	*admissionregistrationv1ac.ValidatingWebhookConfigurationApplyConfiguration,
) {
	mutating := admissionregistrationv1ac.MutatingWebhookConfiguration(MutatingWebhookConfigurationName).WithLabels(labels)
	validating := admissionregistrationv1ac.ValidatingWebhookConfiguration(ValidatingWebhookConfigurationName).WithLabels(labels)
	for _, w := range r.Webhooks {
		rule := admissionregistrationv1ac.RuleWithOperations().
			WithOperations(w.Operations...).
			WithAPIGroups(w.Group).WithAPIVersions("*").WithResources(w.Resources).WithScope(w.Scope)
		client := admissionregistrationv1ac.WebhookClientConfig().
			WithURL(baseURL + w.Path).WithCABundle(caBundle...)
		timeout := w.TimeoutSeconds
		if timeout == 0 {
			timeout = 3
		}
		sideEffects := w.SideEffects
		if sideEffects == "" {
			sideEffects = none
		}
		var selector *metav1ac.LabelSelectorApplyConfiguration
		if s := w.ObjectSelector; s != nil {
			selector = metav1ac.LabelSelector()
			for _, e := range s.MatchExpressions {
				selector.WithMatchExpressions(metav1ac.LabelSelectorRequirement().WithKey(e.Key).WithOperator(e.Operator).WithValues(e.Values...))
			}
		}
		if w.Mutating {
			h := admissionregistrationv1ac.MutatingWebhook().WithName(w.Name).WithRules(rule).WithClientConfig(client).
				WithFailurePolicy(admissionregistrationv1.Fail).WithSideEffects(sideEffects).
				WithAdmissionReviewVersions("v1").WithTimeoutSeconds(timeout)
			if selector != nil {
				h.WithObjectSelector(selector)
			}
			mutating.WithWebhooks(h)
			continue
		}
		h := admissionregistrationv1ac.ValidatingWebhook().WithName(w.Name).WithRules(rule).WithClientConfig(client).
			WithFailurePolicy(admissionregistrationv1.Fail).WithSideEffects(sideEffects).
			WithAdmissionReviewVersions("v1").WithTimeoutSeconds(timeout)
		if selector != nil {
			h.WithObjectSelector(selector)
		}
		validating.WithWebhooks(h)
	}
	return mutating, validating
}
