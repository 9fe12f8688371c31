package render

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/utils/ptr"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

// Values are the chart values the operator sets; everything left empty keeps
// the chart's default from values.yaml. The field names and shapes are the
// chart's (see charts/controlplane/README.md, "Values").
type Values struct {
	Name              string                        `json:"name"`
	DataCenter        string                        `json:"dataCenter"`
	Version           string                        `json:"version"`
	KubernetesVersion string                        `json:"kubernetesVersion,omitempty"`
	EtcdVersion       string                        `json:"etcdVersion,omitempty"`
	ClusterDomain     string                        `json:"clusterDomain,omitempty"`
	Labels            map[string]string             `json:"labels,omitempty"`
	ImageRegistry     string                        `json:"imageRegistry,omitempty"`
	ImagePullPolicy   corev1.PullPolicy             `json:"imagePullPolicy,omitempty"`
	ImagePullSecrets  []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	PriorityClassName string                        `json:"priorityClassName,omitempty"`
	Checksums         map[string]string             `json:"checksums,omitempty"`
	Certificates      CertificateValues             `json:"certificates"`
	Etcd              EtcdValues                    `json:"etcd"`
	Encryption        *EncryptionValues             `json:"encryption,omitempty"`
	NetworkPolicy     NetworkPolicyValues           `json:"networkPolicy"`
	Components        ComponentsValues              `json:"components"`
}

// NetworkPolicyValues: who reaches the control plane's pods.
type NetworkPolicyValues struct {
	Enabled           bool                             `json:"enabled"`
	OperatorNamespace string                           `json:"operatorNamespace,omitempty"`
	PodCIDRs          []string                         `json:"podCIDRs,omitempty"`
	APIServerFrom     []networkingv1.NetworkPolicyPeer `json:"apiServerFrom,omitempty"`
}

// EncryptionValues run the KMS plugin next to every API server.
type EncryptionValues struct {
	Enabled          bool         `json:"enabled"`
	ConfigSecretName string       `json:"configSecretName,omitempty"`
	Plugin           PluginValues `json:"plugin"`
}

// PluginValues are the KMS plugin's image and its Vault settings.
type PluginValues struct {
	Image           ImageValues       `json:"image"`
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`
	Vault           VaultValues       `json:"vault"`
}

// VaultValues say where the transit key is and how to log in.
type VaultValues struct {
	Address      string           `json:"address"`
	Namespace    string           `json:"namespace,omitempty"`
	TransitMount string           `json:"transitMount,omitempty"`
	KeyName      string           `json:"keyName"`
	CASecret     *SecretKeyValues `json:"caSecret,omitempty"`
	Auth         VaultAuthValues  `json:"auth"`
}

// SecretKeyValues name a Secret and a key in it.
type SecretKeyValues struct {
	Name string `json:"name"`
	Key  string `json:"key,omitempty"`
}

// VaultAuthValues set exactly one login method.
type VaultAuthValues struct {
	Token      *TokenAuthValues      `json:"token,omitempty"`
	AppRole    *AppRoleAuthValues    `json:"appRole,omitempty"`
	Kubernetes *KubernetesAuthValues `json:"kubernetes,omitempty"`
}

// TokenAuthValues: a Secret holding a Vault token.
type TokenAuthValues struct {
	SecretName string `json:"secretName"`
	Key        string `json:"key,omitempty"`
}

// AppRoleAuthValues: a role ID and a Secret holding the secret ID.
type AppRoleAuthValues struct {
	Path               string `json:"path,omitempty"`
	RoleID             string `json:"roleID"`
	SecretIDSecretName string `json:"secretIDSecretName"`
	Key                string `json:"key,omitempty"`
}

// KubernetesAuthValues: the Vault role bound to the plugin's service account.
type KubernetesAuthValues struct {
	Path     string `json:"path,omitempty"`
	Role     string `json:"role"`
	Audience string `json:"audience"`
}

// CertificateValues: who signs, for how long, and extra names.
type CertificateValues struct {
	IssuerRef   IssuerValues `json:"issuerRef"`
	Duration    string       `json:"duration,omitempty"`
	RenewBefore string       `json:"renewBefore,omitempty"`
	ExtraSANs   []string     `json:"extraSANs,omitempty"`
	EtcdOwnCA   bool         `json:"etcdOwnCA"`
}

// IssuerValues is a cert-manager issuer reference.
type IssuerValues struct {
	Name  string `json:"name"`
	Kind  string `json:"kind,omitempty"`
	Group string `json:"group,omitempty"`
}

// EtcdValues selects local or external etcd: external when its endpoints
// are listed.
type EtcdValues struct {
	Local    *LocalEtcdValues    `json:"local,omitempty"`
	External *ExternalEtcdValues `json:"external,omitempty"`
}

// LocalEtcdValues are the etcd StatefulSet's settings.
type LocalEtcdValues struct {
	Replicas          int32                        `json:"replicas,omitempty"`
	Image             *ImageValues                 `json:"image,omitempty"`
	ImagePullPolicy   corev1.PullPolicy            `json:"imagePullPolicy,omitempty"`
	PriorityClassName string                       `json:"priorityClassName,omitempty"`
	Storage           *StorageValues               `json:"storage,omitempty"`
	Resources         *corev1.ResourceRequirements `json:"resources,omitempty"`
	Checksums         map[string]string            `json:"checksums,omitempty"`
}

// StorageValues is one etcd member's volume.
type StorageValues struct {
	Type             string  `json:"type,omitempty"`
	Size             string  `json:"size,omitempty"`
	StorageClassName *string `json:"storageClassName,omitempty"`
}

// ExternalEtcdValues point the API servers at an etcd cluster Marina does
// not run.
type ExternalEtcdValues struct {
	Endpoints     []string `json:"endpoints"`
	TLSSecretName string   `json:"tlsSecretName"`
	KeyPrefix     string   `json:"keyPrefix"`
	// Shared: the etcd user may touch only its prefix, so the API servers
	// leave compaction, a cluster-wide operation, to etcd itself.
	Shared bool `json:"shared,omitempty"`
}

// ComponentsValues holds every component's settings, by the chart's keys.
type ComponentsValues struct {
	APIServer             APIServerValues `json:"apiServer"`
	KubeControllerManager ComponentValues `json:"kubeControllerManager"`
	AggregatedAPIServer   ComponentValues `json:"aggregatedAPIServer"`
	ControllerManager     ComponentValues `json:"controllerManager"`
	Scheduler             SchedulerValues `json:"scheduler"`
	Webhook               ComponentValues `json:"webhook"`
	Descheduler           ComponentValues `json:"descheduler"`
	MetricsAdapter        ComponentValues `json:"metricsAdapter"`
	Search                ComponentValues `json:"search"`
}

// SchedulerValues adds how the scheduler (and the descheduler) reach the
// scheduler estimators.
type SchedulerValues struct {
	ComponentValues `json:",inline"`
	Estimator       EstimatorValues `json:"estimator"`
}

// EstimatorValues are the scheduler estimators' address and timeout; the
// chart's defaults when empty.
type EstimatorValues struct {
	Enabled          bool   `json:"enabled"`
	ServicePrefix    string `json:"servicePrefix,omitempty"`
	ServiceNamespace string `json:"serviceNamespace,omitempty"`
	Port             int32  `json:"port,omitempty"`
	Timeout          string `json:"timeout,omitempty"`
}

// ComponentValues are one component's pods.
type ComponentValues struct {
	// Enabled is nil for the components that always run.
	Enabled           *bool                        `json:"enabled,omitempty"`
	Replicas          int32                        `json:"replicas,omitempty"`
	Image             *ImageValues                 `json:"image,omitempty"`
	ImagePullPolicy   corev1.PullPolicy            `json:"imagePullPolicy,omitempty"`
	PriorityClassName string                       `json:"priorityClassName,omitempty"`
	Resources         *corev1.ResourceRequirements `json:"resources,omitempty"`
	ExtraArgs         map[string]string            `json:"extraArgs,omitempty"`
	AntiAffinity      string                       `json:"antiAffinity,omitempty"`
	NodeSelector      map[string]string            `json:"nodeSelector,omitempty"`
	Tolerations       []corev1.Toleration          `json:"tolerations,omitempty"`
	Checksums         map[string]string            `json:"checksums,omitempty"`
}

// ImageValues replaces a component's default image with a full reference.
type ImageValues struct {
	Reference string `json:"reference"`
}

// APIServerValues adds the API server's exposure to its pods' settings.
type APIServerValues struct {
	ComponentValues `json:",inline"`
	EndpointHost    string         `json:"endpointHost,omitempty"`
	Service         *ServiceValues `json:"service,omitempty"`
}

// ServiceValues is the API server's Service.
type ServiceValues struct {
	Type        corev1.ServiceType `json:"type,omitempty"`
	NodePort    *int32             `json:"nodePort,omitempty"`
	Annotations map[string]string  `json:"annotations,omitempty"`
}

// Options are what the operator knows beyond the ControlPlane's spec.
type Options struct {
	// IssuerRef is the issuer every certificate is signed by: the Issuer
	// the operator made from spec.certificates.caSecretRef, or the spec's
	// issuerRef.
	IssuerRef IssuerValues
	// EtcdIssuerLegacy keeps local etcd's certificates with IssuerRef for a
	// control plane whose etcd runs with them (certificates.etcdOwnCA).
	EtcdIssuerLegacy bool
	// Images are the default Kubernetes and etcd tags for spec.version.
	Images ImageVersions
	// Checksums roll every pod when they change; ComponentChecksums roll
	// one component's pods (keys are the chart's component keys, and "etcd").
	Checksums          map[string]string
	ComponentChecksums map[string]map[string]string
	// EndpointHost is an extra host of the serving certificate, such as a
	// load balancer's address once it is known.
	EndpointHost string
	// KMSPluginImage is the KMS plugin's image, needed with spec.encryption.
	KMSPluginImage string
	// EncryptionConfigSecret names the Secret with the EncryptionConfiguration.
	EncryptionConfigSecret string
	// ClusterDomain is the management cluster's DNS domain; the chart's
	// default (cluster.local) when empty.
	ClusterDomain string
	// OperatorNamespace is where Marina's operators run; their pods may
	// reach the API server.
	OperatorNamespace string
	// PodCIDRs are the management cluster's pod networks: addresses outside
	// them may reach the API server.
	PodCIDRs []string
	// DataStore is where a control plane on a DataStore keeps its data:
	// what the operator assigned it there.
	DataStore *ExternalEtcdValues
}

// ValuesFor maps a ControlPlane onto the chart's values.
func ValuesFor(cp *marinav1alpha1.ControlPlane, opts Options) Values {
	spec := &cp.Spec
	v := Values{
		Name:              cp.Name,
		DataCenter:        spec.DataCenter,
		Version:           spec.Version,
		KubernetesVersion: opts.Images.Kubernetes,
		EtcdVersion:       opts.Images.Etcd,
		ClusterDomain:     opts.ClusterDomain,
		Labels: map[string]string{
			marinav1alpha1.LabelControlPlane: cp.Name,
			marinav1alpha1.LabelDataCenter:   spec.DataCenter,
		},
		ImageRegistry:     spec.ImageRegistry,
		ImagePullPolicy:   spec.ImagePullPolicy,
		ImagePullSecrets:  spec.ImagePullSecrets,
		PriorityClassName: spec.PriorityClassName,
		Checksums:         opts.Checksums,
		Certificates: CertificateValues{
			IssuerRef: opts.IssuerRef,
			EtcdOwnCA: !opts.EtcdIssuerLegacy,
			ExtraSANs: spec.Certificates.ExtraSANs,
		},
	}
	if d := spec.Certificates.Duration; d != nil {
		v.Certificates.Duration = d.Duration.String()
	}
	if d := spec.Certificates.RenewBefore; d != nil {
		v.Certificates.RenewBefore = d.Duration.String()
	}

	switch {
	case opts.DataStore != nil:
		v.Etcd.External = opts.DataStore
	case spec.Etcd.External != nil:
		ext := spec.Etcd.External
		v.Etcd.External = &ExternalEtcdValues{
			Endpoints:     ext.Endpoints,
			TLSSecretName: ptr.Deref(ext.TLSSecretRef, marinav1alpha1.SecretReference{}).Name,
			KeyPrefix:     ext.KeyPrefix,
		}
	case spec.Etcd.Local != nil:
		loc := spec.Etcd.Local
		l := &LocalEtcdValues{
			Replicas: loc.Replicas, Checksums: opts.ComponentChecksums["etcd"],
			ImagePullPolicy: loc.ImagePullPolicy, PriorityClassName: loc.PriorityClassName,
		}
		if loc.Image != "" {
			l.Image = &ImageValues{Reference: loc.Image}
		}
		st := StorageValues{Type: string(loc.Storage.Type), StorageClassName: loc.Storage.StorageClassName}
		if loc.Storage.Size != nil {
			st.Size = loc.Storage.Size.String()
		}
		if st != (StorageValues{}) {
			l.Storage = &st
		}
		if !isEmptyResources(loc.Resources) {
			l.Resources = &loc.Resources
		}
		v.Etcd.Local = l
	}

	if e := spec.Encryption; e != nil {
		v.Encryption = encryptionValues(e, opts)
	}
	v.NetworkPolicy = NetworkPolicyValues{
		Enabled:           spec.NetworkPolicy.NetworkPolicyEnabled(),
		OperatorNamespace: opts.OperatorNamespace,
		PodCIDRs:          opts.PodCIDRs,
		APIServerFrom:     spec.NetworkPolicy.APIServerFrom,
	}

	c := &spec.Components
	v.Components = ComponentsValues{
		APIServer: APIServerValues{
			ComponentValues: component(c.APIServer.ComponentSpec, nil, opts.ComponentChecksums[ComponentAPIServer]),
			EndpointHost:    opts.EndpointHost,
		},
		KubeControllerManager: component(c.KubeControllerManager, nil, opts.ComponentChecksums[ComponentKubeControllerManager]),
		AggregatedAPIServer:   optional(c.AggregatedAPIServer, opts.ComponentChecksums[ComponentAggregatedAPIServer]),
		ControllerManager:     optional(c.ControllerManager, opts.ComponentChecksums[ComponentControllerManager]),
		Scheduler: SchedulerValues{
			ComponentValues: optional(c.Scheduler.OptionalComponentSpec, opts.ComponentChecksums[ComponentScheduler]),
			Estimator:       estimatorValues(c.Scheduler.Estimator),
		},
		Webhook:        optional(c.Webhook, opts.ComponentChecksums[ComponentWebhook]),
		Descheduler:    optional(c.Descheduler, opts.ComponentChecksums[ComponentDescheduler]),
		MetricsAdapter: optional(c.MetricsAdapter, opts.ComponentChecksums[ComponentMetricsAdapter]),
		Search:         optional(c.Search, opts.ComponentChecksums[ComponentSearch]),
	}
	if s := c.APIServer.Service; s.Type != "" || s.NodePort != nil || len(s.Annotations) > 0 {
		v.Components.APIServer.Service = &ServiceValues{Type: s.Type, NodePort: s.NodePort, Annotations: s.Annotations}
	}
	return v
}

// The chart's component keys.
const (
	ComponentAPIServer             = "apiServer"
	ComponentKubeControllerManager = "kubeControllerManager"
	ComponentAggregatedAPIServer   = "aggregatedAPIServer"
	ComponentControllerManager     = "controllerManager"
	ComponentScheduler             = "scheduler"
	ComponentWebhook               = "webhook"
	ComponentDescheduler           = "descheduler"
	ComponentMetricsAdapter        = "metricsAdapter"
	ComponentSearch                = "search"
)

func estimatorValues(e marinav1alpha1.SchedulerEstimator) EstimatorValues {
	v := EstimatorValues{Enabled: e.Enabled, ServicePrefix: e.ServicePrefix, ServiceNamespace: e.ServiceNamespace, Port: e.Port}
	if e.Timeout != nil {
		v.Timeout = e.Timeout.Duration.String()
	}
	return v
}

func optional(s marinav1alpha1.OptionalComponentSpec, checksums map[string]string) ComponentValues {
	return component(s.ComponentSpec, s.Enabled, checksums)
}

func component(s marinav1alpha1.ComponentSpec, enabled *bool, checksums map[string]string) ComponentValues {
	v := ComponentValues{
		Enabled:           enabled,
		ImagePullPolicy:   s.ImagePullPolicy,
		PriorityClassName: s.PriorityClassName,
		ExtraArgs:         s.ExtraArgs,
		AntiAffinity:      string(s.AntiAffinity),
		NodeSelector:      s.NodeSelector,
		Tolerations:       s.Tolerations,
		Checksums:         checksums,
	}
	if s.Replicas != nil {
		v.Replicas = *s.Replicas
	}
	if s.Image != "" {
		v.Image = &ImageValues{Reference: s.Image}
	}
	if !isEmptyResources(s.Resources) {
		r := s.Resources
		v.Resources = &r
	}
	return v
}

func isEmptyResources(r corev1.ResourceRequirements) bool {
	return len(r.Limits) == 0 && len(r.Requests) == 0 && len(r.Claims) == 0
}

func encryptionValues(e *marinav1alpha1.EncryptionSpec, opts Options) *EncryptionValues {
	vk := &e.KMS.Vault
	vault := VaultValues{Address: vk.Address, Namespace: vk.Namespace, TransitMount: vk.TransitMount, KeyName: vk.KeyName}
	if ref := vk.CABundleSecretRef; ref != nil {
		vault.CASecret = &SecretKeyValues{Name: ref.Name, Key: ref.KeyOr(marinav1alpha1.DefaultVaultCABundleKey)}
	}
	switch a := vk.Auth; {
	case a.Token != nil:
		vault.Auth.Token = &TokenAuthValues{SecretName: a.Token.SecretRef.Name, Key: a.Token.SecretRef.KeyOr(marinav1alpha1.DefaultVaultTokenKey)}
	case a.AppRole != nil:
		vault.Auth.AppRole = &AppRoleAuthValues{
			Path: a.AppRole.Path, RoleID: a.AppRole.RoleID,
			SecretIDSecretName: a.AppRole.SecretIDSecretRef.Name, Key: a.AppRole.SecretIDSecretRef.KeyOr(marinav1alpha1.DefaultAppRoleSecretIDKey),
		}
	case a.Kubernetes != nil:
		vault.Auth.Kubernetes = &KubernetesAuthValues{Path: a.Kubernetes.Path, Role: a.Kubernetes.Role, Audience: a.Kubernetes.AudienceOrDefault()}
	}
	return &EncryptionValues{
		Enabled:          true,
		ConfigSecretName: opts.EncryptionConfigSecret,
		Plugin:           PluginValues{Image: ImageValues{Reference: opts.KMSPluginImage}, Vault: vault},
	}
}
