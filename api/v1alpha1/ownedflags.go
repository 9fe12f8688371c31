package v1alpha1

// OwnedFlags are, by key of spec.components, the command-line flags Marina
// sets on that component and extraArgs may not override: certificates and
// keys, etcd, encryption, ports and probes, identities, and flags an API
// field sets. The CRD's validation refuses them (the rules on
// ComponentsSpec's fields); a test checks the rules against this list and
// the list against the flags the chart renders, so the three agree.
var OwnedFlags = map[string][]string{
	"apiServer":             {"advertise-address", "bind-address", "secure-port", "tls-cert-file", "tls-private-key-file", "client-ca-file", "authorization-mode", "service-account-issuer", "service-account-key-file", "service-account-signing-key-file", "proxy-client-cert-file", "proxy-client-key-file", "requestheader-client-ca-file", "requestheader-allowed-names", "requestheader-username-headers", "requestheader-group-headers", "requestheader-extra-headers-prefix", "etcd-servers", "etcd-prefix", "etcd-cafile", "etcd-certfile", "etcd-keyfile", "encryption-provider-config", "encryption-provider-config-automatic-reload"},
	"kubeControllerManager": {"kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig", "bind-address", "secure-port", "cert-dir", "service-account-private-key-file", "root-ca-file", "cluster-signing-cert-file", "cluster-signing-key-file", "use-service-account-credentials"},
	"aggregatedAPIServer":   {"kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig", "bind-address", "secure-port", "tls-cert-file", "tls-private-key-file", "etcd-servers", "etcd-prefix", "etcd-cafile", "etcd-certfile", "etcd-keyfile"},
	"controllerManager":     {"kubeconfig", "leader-elect-resource-namespace", "metrics-bind-address", "health-probe-bind-address"},
	"scheduler":             {"kubeconfig", "leader-elect-resource-namespace", "metrics-bind-address", "health-probe-bind-address", "enable-scheduler-estimator", "scheduler-estimator-service-prefix", "scheduler-estimator-service-namespace", "scheduler-estimator-port", "scheduler-estimator-timeout", "scheduler-estimator-ca-file", "scheduler-estimator-cert-file", "scheduler-estimator-key-file"},
	"webhook":               {"kubeconfig", "bind-address", "secure-port", "cert-dir", "metrics-bind-address", "health-probe-bind-address"},
	"descheduler":           {"kubeconfig", "leader-elect-resource-namespace", "metrics-bind-address", "health-probe-bind-address", "scheduler-estimator-service-prefix", "scheduler-estimator-service-namespace", "scheduler-estimator-port", "scheduler-estimator-timeout", "scheduler-estimator-ca-file", "scheduler-estimator-cert-file", "scheduler-estimator-key-file"},
	"metricsAdapter":        {"kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig", "bind-address", "secure-port", "tls-cert-file", "tls-private-key-file"},
	"search":                {"kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig", "bind-address", "secure-port", "tls-cert-file", "tls-private-key-file", "etcd-servers", "etcd-prefix", "etcd-cafile", "etcd-certfile", "etcd-keyfile"},
}

// ByKey returns each component's ComponentSpec by its key in
// spec.components, the keys of OwnedFlags.
func (c *ComponentsSpec) ByKey() map[string]*ComponentSpec {
	return map[string]*ComponentSpec{
		"apiServer":             &c.APIServer.ComponentSpec,
		"kubeControllerManager": &c.KubeControllerManager,
		"aggregatedAPIServer":   &c.AggregatedAPIServer.ComponentSpec,
		"controllerManager":     &c.ControllerManager.ComponentSpec,
		"scheduler":             &c.Scheduler.ComponentSpec,
		"webhook":               &c.Webhook.ComponentSpec,
		"descheduler":           &c.Descheduler.ComponentSpec,
		"metricsAdapter":        &c.MetricsAdapter.ComponentSpec,
		"search":                &c.Search.ComponentSpec,
	}
}
