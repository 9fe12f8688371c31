package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ControlPlaneSpec is the desired state of one federation control plane.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.encryption) || has(self.encryption)",message="spec.encryption cannot be removed once set: the data in etcd is encrypted with it and would become unreadable"
type ControlPlaneSpec struct {
	// Version of the federation engine (Karmada-compatible), such as v1.16.0.
	// It selects the default images of every component and the CRD bundle.
	// Changing it upgrades the control plane.
	// The supported minors are v1.16, v1.17 and v1.18 (each with its
	// Kubernetes version, CRD bundle and webhooks); upgrade one minor at a
	// time.
	// +required
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`
	// +kubebuilder:validation:XValidation:rule="self.matches('^v1[.](16|17|18)[.]')",message="supported engine minors are v1.16, v1.17 and v1.18"
	Version string `json:"version"`

	// DataCenter this control plane runs in. It is a DNS label, such as
	// "fra1", used to pick control planes for member clusters and policies.
	// Immutable: a control plane cannot move to another data center.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="dataCenter is immutable"
	DataCenter string `json:"dataCenter"`

	// ImageRegistry replaces the registry of every default image, such as
	// "registry.example.com/mirror", for air-gapped sites. Images set per
	// component are used as they are.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$`
	ImageRegistry string `json:"imageRegistry,omitempty"`

	// ImagePullPolicy of every component unless the component sets its own.
	// +optional
	// +kubebuilder:default=IfNotPresent
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// ImagePullSecrets are Secrets in this namespace used to pull every image.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// Etcd is where the control plane stores its data.
	// +required
	Etcd EtcdSpec `json:"etcd"`

	// Certificates says who signs the control plane's certificates. Every
	// certificate is a cert-manager Certificate, renewed by cert-manager.
	// +required
	Certificates CertificatesSpec `json:"certificates"`

	// Encryption at rest of the control plane's resources through a KMS v2
	// plugin. Without it, resources are stored unencrypted in etcd. Once
	// set it cannot be removed; resources stored before it was set are
	// rewritten encrypted.
	// +optional
	Encryption *EncryptionSpec `json:"encryption,omitempty"`

	// PriorityClassName of every pod of the control plane unless a component
	// sets its own. The PriorityClass must exist.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// Components tunes each component of the control plane.
	// +optional
	Components ComponentsSpec `json:"components,omitempty"`

	// CRDs says where the engine's CustomResourceDefinitions come from and
	// when they are applied.
	// +optional
	CRDs CRDsSpec `json:"crds,omitempty"`

	// NetworkPolicy limits which pods of the management cluster reach the
	// control plane's.
	// +optional
	NetworkPolicy NetworkPolicySpec `json:"networkPolicy,omitempty"`

	// Suspend stops reconciliation: nothing is created, changed or deleted
	// until it is false again. Running components keep running.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// DeletionPolicy says what happens to the control plane's data in an
	// external etcd cluster when the ControlPlane is deleted: Retain keeps
	// the keys under its prefix, Delete removes them. Local etcd is always
	// deleted with the control plane.
	// +optional
	// +kubebuilder:default=Retain
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// NetworkPolicySpec: NetworkPolicies that admit to every pod of the control
// plane (etcd, the API server, the engine's components) only the control
// plane's own pods; to the API server also Marina's operators, clients from
// outside the management cluster's pod network (members, people, load
// balancers: the operator's --cluster-pod-cidrs, the marina chart's
// operators.controlplane.networkPolicy.podCIDRs) and APIServerFrom.
// Another tenant's pod reaches neither etcd nor any component, and the API
// server only when listed. Egress is not limited.
type NetworkPolicySpec struct {
	// Enabled creates the NetworkPolicies; true by default. They take
	// effect where the cluster's network enforces NetworkPolicies.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// APIServerFrom are further clients of the API server inside the
	// management cluster, as NetworkPolicy peers: pods, namespaces (an
	// ingress controller's, a tenant's tooling) or IP blocks.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	APIServerFrom []networkingv1.NetworkPolicyPeer `json:"apiServerFrom,omitempty"`
}

// NetworkPolicyEnabled says whether the control plane gets NetworkPolicies.
func (s NetworkPolicySpec) NetworkPolicyEnabled() bool { return s.Enabled == nil || *s.Enabled }

// DeletionPolicy says what happens to external etcd data on delete.
// +kubebuilder:validation:Enum=Retain;Delete
type DeletionPolicy string

const (
	// DeletionPolicyRetain keeps the data under the control plane's key prefix.
	DeletionPolicyRetain DeletionPolicy = "Retain"
	// DeletionPolicyDelete removes every key under the control plane's prefix.
	DeletionPolicyDelete DeletionPolicy = "Delete"
)

// EtcdSpec chooses exactly one etcd: a local one that Marina runs, or an
// external cluster shared by several control planes.
// +kubebuilder:validation:XValidation:rule="has(self.local) != has(self.external)",message="exactly one of etcd.local or etcd.external must be set"
// +kubebuilder:validation:XValidation:rule="has(self.local) == has(oldSelf.local)",message="etcd mode is immutable: etcd.local and etcd.external cannot be swapped"
type EtcdSpec struct {
	// Local etcd runs as a StatefulSet next to the control plane.
	// +optional
	Local *LocalEtcd `json:"local,omitempty"`

	// External etcd is an existing cluster reached over mutual TLS.
	// +optional
	External *ExternalEtcd `json:"external,omitempty"`
}

// LocalEtcd is an etcd cluster that Marina runs for one control plane.
type LocalEtcd struct {
	// Replicas is the number of etcd members: 1, 3 or 5, fixed at
	// creation. Members added later would start as a second, empty etcd
	// cluster next to the first (a split brain), and Marina does not yet
	// grow or shrink etcd through its member API; to change the count, make
	// a new ControlPlane with the count you want and move to it.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Enum=1;3;5
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.etcd.local.replicas cannot change once the control plane exists: new members would start a second, empty etcd cluster (split brain), and Marina does not add or remove etcd members yet. Keep the current count, or create a new ControlPlane with the count you want and move members and workloads to it"
	Replicas int32 `json:"replicas,omitempty"`

	// Storage of each member.
	// +optional
	Storage EtcdStorage `json:"storage,omitempty"`

	// Resources of each member's etcd container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// Image replaces etcd's default image, as a full reference.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`

	// ImagePullPolicy replaces spec.imagePullPolicy for etcd.
	// +optional
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// PriorityClassName replaces spec.priorityClassName for etcd's pods.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	PriorityClassName string `json:"priorityClassName,omitempty"`
}

// EtcdStorage is the volume of one etcd member.
// +kubebuilder:validation:XValidation:rule="self.type == 'PersistentVolumeClaim' || !has(self.storageClassName)",message="storageClassName is only valid with type PersistentVolumeClaim"
type EtcdStorage struct {
	// Type is PersistentVolumeClaim (data survives pod restarts; needs a
	// storage provisioner) or EmptyDir (data lives as long as the pod; for
	// tests and clusters without storage).
	// +optional
	// +kubebuilder:default=PersistentVolumeClaim
	// +kubebuilder:validation:Enum=PersistentVolumeClaim;EmptyDir
	Type EtcdStorageType `json:"type,omitempty"`

	// Size of each member's volume.
	// +optional
	// +kubebuilder:default="8Gi"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).compareTo(quantity('1Gi')) >= 0",message="size must be at least 1Gi"
	Size *resource.Quantity `json:"size,omitempty"`

	// StorageClassName of the PersistentVolumeClaims; the cluster's default
	// class when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	StorageClassName *string `json:"storageClassName,omitempty"`
}

// EtcdStorageType is the kind of volume an etcd member uses.
type EtcdStorageType string

const (
	// EtcdStoragePersistentVolumeClaim stores data on a PersistentVolumeClaim.
	EtcdStoragePersistentVolumeClaim EtcdStorageType = "PersistentVolumeClaim"
	// EtcdStorageEmptyDir stores data on an emptyDir volume.
	EtcdStorageEmptyDir EtcdStorageType = "EmptyDir"
)

// ExternalEtcd is an etcd cluster that Marina does not run: a DataStore the
// platform team registered, which isolates each control plane on it, or
// (deprecated) endpoints, a client certificate and a key prefix of your own.
// +kubebuilder:validation:XValidation:rule="has(self.dataStore) != (has(self.endpoints) || has(self.tlsSecretRef) || has(self.keyPrefix))",message="spec.etcd.external takes either dataStore or endpoints, tlsSecretRef and keyPrefix, not both and not neither"
// +kubebuilder:validation:XValidation:rule="has(self.dataStore) || (has(self.endpoints) && has(self.tlsSecretRef) && has(self.keyPrefix))",message="without spec.etcd.external.dataStore, endpoints, tlsSecretRef and keyPrefix are all required"
// +kubebuilder:validation:XValidation:rule="has(self.dataStore) == has(oldSelf.dataStore)",message="spec.etcd.external cannot move between a DataStore and endpoints of its own: the data would be left behind; create a new ControlPlane"
type ExternalEtcd struct {
	// DataStore names the DataStore (a shared etcd the platform team
	// registered) to keep the data in. Marina assigns the control plane a
	// key prefix, an etcd user whose role covers only that prefix, and a
	// client certificate for that user (Secret <name>-etcd-client); see
	// status.etcd. Immutable.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.etcd.external.dataStore is immutable: the data would be left behind"
	DataStore string `json:"dataStore,omitempty"`

	// Endpoints of the etcd members, https only. Deprecated: with endpoints
	// of its own, a control plane is only as isolated as the certificate in
	// tlsSecretRef; ask the platform team for a DataStore and use
	// dataStore instead. Kept until v1alpha2.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=9
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.all(e, isURL(e) && url(e).getScheme() == 'https' && url(e).getHostname() != '')",message="every etcd endpoint must be an https URL"
	Endpoints []string `json:"endpoints,omitempty"`

	// TLSSecretRef is a Secret in this namespace with the client certificate
	// (tls.crt, tls.key) and the CA that signed the etcd servers (ca.crt).
	// Deprecated with endpoints.
	// +optional
	TLSSecretRef *SecretReference `json:"tlsSecretRef,omitempty"`

	// KeyPrefix under which this control plane stores every key. It must be
	// unique among the control planes that share the cluster, and the
	// certificate's etcd user should have no rights outside it. Deprecated
	// with endpoints. Immutable: the data would be left behind.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^(/[a-z0-9]([-a-z0-9_.]*[a-z0-9])?)+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="keyPrefix is immutable"
	KeyPrefix string `json:"keyPrefix,omitempty"`
}

// CertificatesSpec chooses the signer of the control plane's certificates:
// exactly one of a CA Secret of your own or a cert-manager issuer.
// +kubebuilder:validation:XValidation:rule="has(self.caSecretRef) != has(self.issuerRef)",message="exactly one of certificates.caSecretRef or certificates.issuerRef must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.renewBefore) || duration(self.renewBefore) < duration(self.duration)",message="certificates.renewBefore must be shorter than certificates.duration"
type CertificatesSpec struct {
	// CASecretRef is a Secret in this namespace holding your CA (tls.crt and
	// tls.key). Marina creates a cert-manager CA Issuer from it; the Secret
	// itself is never changed or deleted.
	// +optional
	CASecretRef *SecretReference `json:"caSecretRef,omitempty"`

	// IssuerRef is an existing cert-manager Issuer in this namespace or a
	// ClusterIssuer, such as a corporate PKI.
	// +optional
	IssuerRef *IssuerReference `json:"issuerRef,omitempty"`

	// Duration of each leaf certificate.
	// +optional
	// +kubebuilder:default="2160h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1h')",message="duration must be at least 1h"
	Duration *metav1.Duration `json:"duration,omitempty"`

	// RenewBefore is how long before expiry cert-manager renews a leaf
	// certificate; a third of duration when empty, as in cert-manager.
	// Renewed certificates roll the pods that use them.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`

	// ExtraSANs are additional DNS names or IP addresses of the API server
	// certificate, such as the name of an external load balancer.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.all(s, isIP(s) || s.matches('^([*][.])?[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'))",message="every extraSANs entry must be a DNS name or an IP address"
	ExtraSANs []string `json:"extraSANs,omitempty"`
}

// IssuerReference names a cert-manager issuer.
type IssuerReference struct {
	// Name of the Issuer or ClusterIssuer.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Kind is Issuer (in this namespace) or ClusterIssuer.
	// +optional
	// +kubebuilder:default=Issuer
	// +kubebuilder:validation:Enum=Issuer;ClusterIssuer
	Kind string `json:"kind,omitempty"`

	// Group of the issuer kind; cert-manager.io unless you run an external
	// issuer.
	// +optional
	// +kubebuilder:default="cert-manager.io"
	// +kubebuilder:validation:MaxLength=253
	Group string `json:"group,omitempty"`
}

// EncryptionSpec configures encryption at rest.
// +kubebuilder:validation:XValidation:rule="oldSelf.resources.all(r, r in self.resources)",message="spec.encryption.resources can only grow: objects of a removed resource stay encrypted in etcd and would become unreadable"
type EncryptionSpec struct {
	// KMS is the KMS v2 provider that encrypts the data keys.
	// +required
	KMS KMSSpec `json:"kms"`

	// Resources to encrypt, as resource or resource.group, such as secrets
	// or widgets.example.com. Resources can be added (their objects are
	// rewritten encrypted), never removed.
	// +optional
	// +kubebuilder:default={"secrets"}
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Resources []string `json:"resources,omitempty"`
}

// KMSSpec chooses the KMS backend.
type KMSSpec struct {
	// Vault transit engine as the KMS backend.
	// +required
	Vault VaultKMS `json:"vault"`
}

// VaultKMS encrypts data keys with a key of Vault's transit engine.
type VaultKMS struct {
	// Address of the Vault server, such as https://vault.example.com:8200.
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="vault.address must be an absolute http or https URL"
	Address string `json:"address"`

	// Namespace is the Vault Enterprise namespace, if any.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Namespace string `json:"namespace,omitempty"`

	// TransitMount is the path where the transit engine is mounted.
	// +optional
	// +kubebuilder:default=transit
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_-]+(/[a-zA-Z0-9_-]+)*$`
	TransitMount string `json:"transitMount,omitempty"`

	// KeyName is the transit key. Rotating it in Vault triggers a storage
	// migration to the new key version.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_.-]+$`
	KeyName string `json:"keyName"`

	// Auth is how the KMS plugin logs in to Vault: exactly one of token,
	// appRole or kubernetes.
	// +required
	Auth VaultAuth `json:"auth"`

	// CABundleSecretRef is a Secret in this namespace with the PEM CA bundle
	// that signed Vault's serving certificate; key ca.crt by default. The
	// system roots are used when empty.
	// +optional
	CABundleSecretRef *SecretKeyReference `json:"caBundleSecretRef,omitempty"`
}

// VaultAuth is exactly one way to log in to Vault.
// +kubebuilder:validation:XValidation:rule="[has(self.token), has(self.appRole), has(self.kubernetes)].filter(x, x).size() == 1",message="exactly one of auth.token, auth.appRole or auth.kubernetes must be set"
type VaultAuth struct {
	// Token is a Vault token read from a Secret (key token by default).
	// +optional
	Token *VaultTokenAuth `json:"token,omitempty"`

	// AppRole logs in with a role ID and a secret ID.
	// +optional
	AppRole *VaultAppRoleAuth `json:"appRole,omitempty"`

	// Kubernetes logs in with the plugin's service account token.
	// +optional
	Kubernetes *VaultKubernetesAuth `json:"kubernetes,omitempty"`
}

// VaultTokenAuth reads a Vault token from a Secret.
type VaultTokenAuth struct {
	// SecretRef is the Secret holding the token; key token by default.
	// +required
	SecretRef SecretKeyReference `json:"secretRef"`
}

// VaultAppRoleAuth logs in through Vault's AppRole auth method.
type VaultAppRoleAuth struct {
	// Path where the AppRole auth method is mounted.
	// +optional
	// +kubebuilder:default=approle
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_-]+(/[a-zA-Z0-9_-]+)*$`
	Path string `json:"path,omitempty"`

	// RoleID of the AppRole.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	RoleID string `json:"roleID"`

	// SecretIDSecretRef is the Secret holding the secret ID; key secret-id
	// by default.
	// +required
	SecretIDSecretRef SecretKeyReference `json:"secretIDSecretRef"`
}

// VaultKubernetesAuth logs in through Vault's Kubernetes auth method.
type VaultKubernetesAuth struct {
	// Path where the Kubernetes auth method is mounted.
	// +optional
	// +kubebuilder:default=kubernetes
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_-]+(/[a-zA-Z0-9_-]+)*$`
	Path string `json:"path,omitempty"`

	// Role is the Vault role bound to the plugin's service account.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Role string `json:"role"`

	// Audience of the plugin's service account tokens, the only one they
	// carry. Configure the Vault role to require it (audience=vault): a
	// token for Vault is then no credential for the management cluster's
	// API server, and the API server's own tokens are refused by Vault.
	// Vault reviews the token with a reviewer JWT of its own
	// (token_reviewer_jwt, a service account bound to
	// system:auth-delegator), since this token cannot call the API server.
	// +optional
	// +kubebuilder:default=vault
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Audience string `json:"audience,omitempty"`
}

// DefaultVaultAudience is the audience of the KMS plugin's service account
// tokens when spec.encryption.kms.vault.auth.kubernetes.audience is empty.
const DefaultVaultAudience = "vault"

// AudienceOrDefault is the audience the plugin's tokens carry.
func (a VaultKubernetesAuth) AudienceOrDefault() string {
	if a.Audience == "" {
		return DefaultVaultAudience
	}
	return a.Audience
}

// ComponentsSpec tunes each component of a control plane. The API server and
// kube-controller-manager always run; the others can be switched off.
// +kubebuilder:validation:XValidation:rule="!(has(self.aggregatedAPIServer) && has(self.aggregatedAPIServer.enabled) && !self.aggregatedAPIServer.enabled) || ((has(self.controllerManager) && has(self.controllerManager.enabled) && !self.controllerManager.enabled) && (has(self.scheduler) && has(self.scheduler.enabled) && !self.scheduler.enabled) && (has(self.metricsAdapter) && has(self.metricsAdapter.enabled) && !self.metricsAdapter.enabled) && (has(self.search) && has(self.search.enabled) && !self.search.enabled) && !(has(self.descheduler) && has(self.descheduler.enabled) && self.descheduler.enabled))",message="the engine's controllerManager, scheduler, metricsAdapter, search and descheduler need the aggregatedAPIServer, which serves the Clusters they watch: enable aggregatedAPIServer or disable all of them",fieldPath=".aggregatedAPIServer.enabled",reason=FieldValueInvalid
type ComponentsSpec struct {
	// APIServer is the federation API server (kube-apiserver).
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || self.extraArgs.all(k, !(k in ['advertise-address','bind-address','secure-port','tls-cert-file','tls-private-key-file','client-ca-file','authorization-mode','service-account-issuer','service-account-key-file','service-account-signing-key-file','proxy-client-cert-file','proxy-client-key-file','requestheader-client-ca-file','requestheader-allowed-names','requestheader-username-headers','requestheader-group-headers','requestheader-extra-headers-prefix','etcd-servers','etcd-prefix','etcd-cafile','etcd-certfile','etcd-keyfile','encryption-provider-config','encryption-provider-config-automatic-reload']))",message="extraArgs may not set a flag Marina owns (certificates, etcd, encryption, ports, identities, or set by an API field): advertise-address, bind-address, secure-port, tls-cert-file, tls-private-key-file, client-ca-file, authorization-mode, service-account-issuer, service-account-key-file, service-account-signing-key-file, proxy-client-cert-file, proxy-client-key-file, requestheader-client-ca-file, requestheader-allowed-names, requestheader-username-headers, requestheader-group-headers, requestheader-extra-headers-prefix, etcd-servers, etcd-prefix, etcd-cafile, etcd-certfile, etcd-keyfile, encryption-provider-config, encryption-provider-config-automatic-reload",fieldPath=".extraArgs",reason=FieldValueForbidden
	APIServer APIServerComponent `json:"apiServer,omitempty"`

	// KubeControllerManager runs the garbage collector and namespace
	// controllers of the federation API server.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || self.extraArgs.all(k, !(k in ['kubeconfig','authentication-kubeconfig','authorization-kubeconfig','bind-address','secure-port','cert-dir','service-account-private-key-file','root-ca-file','cluster-signing-cert-file','cluster-signing-key-file','use-service-account-credentials']))",message="extraArgs may not set a flag Marina owns (certificates, etcd, encryption, ports, identities, or set by an API field): kubeconfig, authentication-kubeconfig, authorization-kubeconfig, bind-address, secure-port, cert-dir, service-account-private-key-file, root-ca-file, cluster-signing-cert-file, cluster-signing-key-file, use-service-account-credentials",fieldPath=".extraArgs",reason=FieldValueForbidden
	KubeControllerManager ComponentSpec `json:"kubeControllerManager,omitempty"`

	// AggregatedAPIServer serves the engine's cluster API (on by default).
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || self.extraArgs.all(k, !(k in ['kubeconfig','authentication-kubeconfig','authorization-kubeconfig','bind-address','secure-port','tls-cert-file','tls-private-key-file','etcd-servers','etcd-prefix','etcd-cafile','etcd-certfile','etcd-keyfile']))",message="extraArgs may not set a flag Marina owns (certificates, etcd, encryption, ports, identities, or set by an API field): kubeconfig, authentication-kubeconfig, authorization-kubeconfig, bind-address, secure-port, tls-cert-file, tls-private-key-file, etcd-servers, etcd-prefix, etcd-cafile, etcd-certfile, etcd-keyfile",fieldPath=".extraArgs",reason=FieldValueForbidden
	AggregatedAPIServer OptionalComponentSpec `json:"aggregatedAPIServer,omitempty"`

	// ControllerManager is the engine's controller manager (on by default).
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || self.extraArgs.all(k, !(k in ['kubeconfig','leader-elect-resource-namespace','metrics-bind-address','health-probe-bind-address']))",message="extraArgs may not set a flag Marina owns (certificates, etcd, encryption, ports, identities, or set by an API field): kubeconfig, leader-elect-resource-namespace, metrics-bind-address, health-probe-bind-address",fieldPath=".extraArgs",reason=FieldValueForbidden
	ControllerManager OptionalComponentSpec `json:"controllerManager,omitempty"`

	// Scheduler is the engine's scheduler (on by default).
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || self.extraArgs.all(k, !(k in ['kubeconfig','leader-elect-resource-namespace','metrics-bind-address','health-probe-bind-address','enable-scheduler-estimator','scheduler-estimator-service-prefix','scheduler-estimator-service-namespace','scheduler-estimator-port','scheduler-estimator-timeout','scheduler-estimator-ca-file','scheduler-estimator-cert-file','scheduler-estimator-key-file']))",message="extraArgs may not set a flag Marina owns (certificates, etcd, encryption, ports, identities, or set by an API field): kubeconfig, leader-elect-resource-namespace, metrics-bind-address, health-probe-bind-address, enable-scheduler-estimator, scheduler-estimator-service-prefix, scheduler-estimator-service-namespace, scheduler-estimator-port, scheduler-estimator-timeout, scheduler-estimator-ca-file, scheduler-estimator-cert-file, scheduler-estimator-key-file",fieldPath=".extraArgs",reason=FieldValueForbidden
	Scheduler SchedulerComponent `json:"scheduler,omitempty"`

	// Webhook is the engine's admission webhook (on by default).
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || self.extraArgs.all(k, !(k in ['kubeconfig','bind-address','secure-port','cert-dir','metrics-bind-address','health-probe-bind-address']))",message="extraArgs may not set a flag Marina owns (certificates, etcd, encryption, ports, identities, or set by an API field): kubeconfig, bind-address, secure-port, cert-dir, metrics-bind-address, health-probe-bind-address",fieldPath=".extraArgs",reason=FieldValueForbidden
	Webhook OptionalComponentSpec `json:"webhook,omitempty"`

	// Descheduler is the engine's descheduler (off unless enabled). It
	// asks the scheduler estimators, as scheduler.estimator sets them.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || self.extraArgs.all(k, !(k in ['kubeconfig','leader-elect-resource-namespace','metrics-bind-address','health-probe-bind-address','scheduler-estimator-service-prefix','scheduler-estimator-service-namespace','scheduler-estimator-port','scheduler-estimator-timeout','scheduler-estimator-ca-file','scheduler-estimator-cert-file','scheduler-estimator-key-file']))",message="extraArgs may not set a flag Marina owns (certificates, etcd, encryption, ports, identities, or set by an API field): kubeconfig, leader-elect-resource-namespace, metrics-bind-address, health-probe-bind-address, scheduler-estimator-service-prefix, scheduler-estimator-service-namespace, scheduler-estimator-port, scheduler-estimator-timeout, scheduler-estimator-ca-file, scheduler-estimator-cert-file, scheduler-estimator-key-file",fieldPath=".extraArgs",reason=FieldValueForbidden
	Descheduler OptionalComponentSpec `json:"descheduler,omitempty"`

	// MetricsAdapter is karmada-metrics-adapter (on by default): it serves
	// metrics.k8s.io and custom.metrics.k8s.io in the federation API server
	// from the member clusters' metrics, which FederatedHPA scales by.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || self.extraArgs.all(k, !(k in ['kubeconfig','authentication-kubeconfig','authorization-kubeconfig','bind-address','secure-port','tls-cert-file','tls-private-key-file']))",message="extraArgs may not set a flag Marina owns (certificates, etcd, encryption, ports, identities, or set by an API field): kubeconfig, authentication-kubeconfig, authorization-kubeconfig, bind-address, secure-port, tls-cert-file, tls-private-key-file",fieldPath=".extraArgs",reason=FieldValueForbidden
	MetricsAdapter OptionalComponentSpec `json:"metricsAdapter,omitempty"`

	// Search is karmada-search (on by default): it serves search.karmada.io
	// in the federation API server, a cache of the member clusters'
	// resources selected by ResourceRegistry objects, and a proxy to them.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.extraArgs) || self.extraArgs.all(k, !(k in ['kubeconfig','authentication-kubeconfig','authorization-kubeconfig','bind-address','secure-port','tls-cert-file','tls-private-key-file','etcd-servers','etcd-prefix','etcd-cafile','etcd-certfile','etcd-keyfile']))",message="extraArgs may not set a flag Marina owns (certificates, etcd, encryption, ports, identities, or set by an API field): kubeconfig, authentication-kubeconfig, authorization-kubeconfig, bind-address, secure-port, tls-cert-file, tls-private-key-file, etcd-servers, etcd-prefix, etcd-cafile, etcd-certfile, etcd-keyfile",fieldPath=".extraArgs",reason=FieldValueForbidden
	Search OptionalComponentSpec `json:"search,omitempty"`
}

// SchedulerComponent is the engine's scheduler and how it reaches the
// scheduler estimators.
type SchedulerComponent struct {
	OptionalComponentSpec `json:",inline"`

	// Estimator says how the scheduler and the descheduler reach the
	// scheduler estimators (karmada-scheduler-estimator, one per member
	// cluster, which Marina does not run), for replica estimates from each
	// member's free resources.
	// +optional
	Estimator SchedulerEstimator `json:"estimator,omitempty"`
}

// SchedulerEstimator is where the scheduler estimators listen and how they
// are trusted. The engine first looks for a Service
// <servicePrefix>-<cluster> in serviceNamespace of the federation API
// server (an ExternalName pointing at the estimator), then dials
// <servicePrefix>-<cluster>.<serviceNamespace>.svc. It presents the
// control plane's <name>-scheduler-estimator-client certificate and checks
// the estimator's serving certificate against the control plane's CA.
type SchedulerEstimator struct {
	// Enabled makes the scheduler ask the estimators (off by default). The
	// descheduler always asks them.
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// ServicePrefix of the estimators' Services.
	// +optional
	// +kubebuilder:default=karmada-scheduler-estimator
	// +kubebuilder:validation:MaxLength=52
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	ServicePrefix string `json:"servicePrefix,omitempty"`

	// ServiceNamespace of the estimators' Services; the ControlPlane's own
	// namespace when empty, where estimators next to the control plane run.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	ServiceNamespace string `json:"serviceNamespace,omitempty"`

	// Port the estimators serve gRPC on.
	// +optional
	// +kubebuilder:default=10352
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// Timeout of one call to an estimator.
	// +optional
	// +kubebuilder:default="3s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('1m')",message="estimator.timeout must be between 100ms and 1m"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// OptionalComponentSpec is a component that can be switched off.
type OptionalComponentSpec struct {
	// Enabled switches the component on or off. Each component documents its
	// default.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	ComponentSpec `json:",inline"`
}

// ComponentSpec tunes the pods of one component.
type ComponentSpec struct {
	// Replicas of the component, 1 to 10 (default 1). Above 1, the pods
	// spread across nodes and get a PodDisruptionBudget.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	Replicas *int32 `json:"replicas,omitempty"`

	// Image replaces the component's default image, as a full reference.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`

	// ImagePullPolicy replaces spec.imagePullPolicy for this component.
	// +optional
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// PriorityClassName replaces spec.priorityClassName for this component.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// Resources of the component's main container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// ExtraArgs are command-line flags added to the component, without the
	// leading dashes, such as {"v": "4"}. They replace a tunable flag Marina
	// sets too (such as enable-admission-plugins); the flags Marina owns
	// (certificates, etcd, encryption, ports, identities) are refused.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[a-z0-9][-a-z0-9.]*$') && size(k) <= 128)",message="extraArgs keys must be flag names without leading dashes, such as v or feature-gates"
	ExtraArgs map[string]string `json:"extraArgs,omitempty"`

	// AntiAffinity spreads replicas across nodes: Preferred (default),
	// Required, or None.
	// +optional
	// +kubebuilder:default=Preferred
	// +kubebuilder:validation:Enum=Preferred;Required;None
	AntiAffinity AntiAffinity `json:"antiAffinity,omitempty"`

	// NodeSelector constrains the component's pods to matching nodes.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Tolerations of the component's pods.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
}

// AntiAffinity is how strictly a component's replicas avoid sharing a node.
type AntiAffinity string

const (
	// AntiAffinityPreferred spreads replicas when the scheduler can.
	AntiAffinityPreferred AntiAffinity = "Preferred"
	// AntiAffinityRequired never places two replicas on one node.
	AntiAffinityRequired AntiAffinity = "Required"
	// AntiAffinityNone places replicas anywhere.
	AntiAffinityNone AntiAffinity = "None"
)

// APIServerComponent is the federation API server and how it is exposed.
type APIServerComponent struct {
	ComponentSpec `json:",inline"`

	// Service exposes the API server.
	// +optional
	Service APIServerService `json:"service,omitempty"`
}

// APIServerService is the Service in front of the federation API server.
// +kubebuilder:validation:XValidation:rule="!has(self.nodePort) || self.type != 'ClusterIP'",message="service.nodePort needs service.type NodePort or LoadBalancer"
type APIServerService struct {
	// Type of the Service: ClusterIP (default), NodePort or LoadBalancer.
	// +optional
	// +kubebuilder:default=ClusterIP
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	Type corev1.ServiceType `json:"type,omitempty"`

	// NodePort to use with type NodePort or LoadBalancer; allocated by the
	// cluster when empty.
	// +optional
	// +kubebuilder:validation:Minimum=30000
	// +kubebuilder:validation:Maximum=32767
	NodePort *int32 `json:"nodePort,omitempty"`

	// Annotations of the Service, such as a cloud load balancer's settings.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	Annotations map[string]string `json:"annotations,omitempty"`
}

// CRDsSpec says where the engine's CRDs come from and when they are applied.
type CRDsSpec struct {
	// HTTP downloads the CRD bundle (a tar.gz or a multi-document YAML) from
	// a mirror instead of the engine's release, for air-gapped sites.
	// +optional
	HTTP *HTTPSource `json:"http,omitempty"`

	// Policy is IfNotPresent (download once per version and checksum, then
	// use the cached copy) or Always (download on every reconciliation).
	// +optional
	// +kubebuilder:default=IfNotPresent
	// +kubebuilder:validation:Enum=IfNotPresent;Always
	Policy CRDPolicy `json:"policy,omitempty"`
}

// CRDPolicy says when the CRD bundle is downloaded.
type CRDPolicy string

const (
	// CRDPolicyIfNotPresent downloads once per version and checksum.
	CRDPolicyIfNotPresent CRDPolicy = "IfNotPresent"
	// CRDPolicyAlways downloads on every reconciliation.
	CRDPolicyAlways CRDPolicy = "Always"
)

// ControlPlaneStatus is the observed state of a control plane.
type ControlPlaneStatus struct {
	// ObservedGeneration is the generation of the spec that status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions per provisioning stage (CertificatesReady, EtcdReady,
	// EncryptionReady, APIServerReady, CRDsReady, ComponentsReady) and the
	// summary Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Endpoint is the URL of the federation API server.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// AdminKubeconfigSecretRef is the Secret (key kubeconfig) holding an
	// admin kubeconfig for the federation API server.
	// +optional
	AdminKubeconfigSecretRef *SecretKeyReference `json:"adminKubeconfigSecretRef,omitempty"`

	// RegistrationKubeconfigSecretRef is the Secret (key kubeconfig) holding
	// the register operator's kubeconfig for the federation API server:
	// the user marina:register-operator, who may only join and unjoin
	// member clusters (the engine's Clusters and their credential Secrets).
	// +optional
	RegistrationKubeconfigSecretRef *SecretKeyReference `json:"registrationKubeconfigSecretRef,omitempty"`

	// SyncKubeconfigSecretRef is the Secret (key kubeconfig) holding the
	// sync operator's kubeconfig for the federation API server: the user
	// marina:sync-operator, who may write the engine's policies,
	// namespaces and namespaced RBAC, plus what a ClusterRole labelled
	// marina.dev/aggregate-to-sync-operator adds there.
	// +optional
	SyncKubeconfigSecretRef *SecretKeyReference `json:"syncKubeconfigSecretRef,omitempty"`

	// Version of the engine that runs now; it differs from spec.version
	// while an upgrade rolls out.
	// +optional
	Version string `json:"version,omitempty"`

	// Encryption is what the operator knows of encryption at rest: the
	// transit key version in use and the storage migration to it.
	// +optional
	Encryption *EncryptionStatus `json:"encryption,omitempty"`

	// Etcd is the part of a DataStore Marina assigned the control plane.
	// +optional
	Etcd *EtcdStatus `json:"etcd,omitempty"`
}

// EtcdStatus is where a control plane keeps its data in a DataStore.
type EtcdStatus struct {
	// KeyPrefix under which every key of the control plane is stored.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	KeyPrefix string `json:"keyPrefix,omitempty"`

	// User is the etcd user (and role) whose rights cover only KeyPrefix;
	// the common name of the client certificate in ClientSecretRef.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	User string `json:"user,omitempty"`

	// ClientSecretRef is the Secret with that user's client certificate.
	// +optional
	ClientSecretRef *SecretReference `json:"clientSecretRef,omitempty"`
}

// EncryptionStatus tracks the transit key version the API servers encrypt
// with and whether every encrypted resource has been rewritten with it.
type EncryptionStatus struct {
	// KeyID is the key ID of the transit key's latest version, as the KMS
	// plugin reports it to the API servers, such as transit/marina:v2.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	KeyID string `json:"keyID,omitempty"`

	// MigratedKeyID is the key ID every resource in MigratedResources was
	// last rewritten with. A new KeyID (a rotation in Vault) or a new
	// resource in spec.encryption.resources starts a storage migration.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	MigratedKeyID string `json:"migratedKeyID,omitempty"`

	// MigratedResources are the resources the last migration rewrote.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=253
	MigratedResources []string `json:"migratedResources,omitempty"`

	// Migration is the storage migration under way, if any.
	// +optional
	Migration *StorageMigration `json:"migration,omitempty"`

	// VaultConfigHash identifies the Vault settings (address, mount, key,
	// credentials' Secrets) last seen working, so that an unreachable Vault
	// with unchanged settings is an outage (Degraded, pods keep running)
	// and not a mistake to keep away from the running pods.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	VaultConfigHash string `json:"vaultConfigHash,omitempty"`
}

// StorageMigration is a rewrite of every encrypted resource so that all of
// them are encrypted with KeyID.
type StorageMigration struct {
	// KeyID the resources are being rewritten with.
	// +required
	// +kubebuilder:validation:MaxLength=512
	KeyID string `json:"keyID"`

	// Resources to rewrite, in order: spec.encryption.resources when the
	// migration started. A different list starts the migration over.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=253
	Resources []string `json:"resources,omitempty"`

	// Resource being rewritten now, as resource or resource.group.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Resource string `json:"resource,omitempty"`

	// Continue is the list continuation of Resource where the migration
	// goes on.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Continue string `json:"continue,omitempty"`

	// Rewritten counts the objects rewritten so far.
	// +optional
	Rewritten int64 `json:"rewritten,omitempty"`

	// Failed counts the objects the API server refused to write back (an
	// admission webhook, an object that no longer validates); they keep
	// their old key until they are written again. The condition names the
	// last one.
	// +optional
	Failed int64 `json:"failed,omitempty"`

	// LastFailure says why the last refused object was refused.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LastFailure string `json:"lastFailure,omitempty"`

	// StartTime is when the migration started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
}

// ControlPlane is one federation control plane (Karmada-compatible): its API
// server, etcd, certificates, encryption and engine components, which Marina
// provisions, upgrades and deletes.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cp,categories=marina
// +kubebuilder:printcolumn:name="Data Center",type=string,JSONPath=`.spec.dataCenter`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.status.endpoint`
// +kubebuilder:printcolumn:name="Key",type=string,JSONPath=`.status.encryption.keyID`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 42",message="metadata.name must be at most 42 characters: it prefixes the control plane's objects, such as <name>-aggregated-apiserver, whose names are limited to 63"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter): it names the control plane's Services"
type ControlPlane struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired control plane.
	// +required
	Spec ControlPlaneSpec `json:"spec"`

	// Status is what Marina observed.
	// +optional
	Status ControlPlaneStatus `json:"status,omitempty"`
}

// ControlPlaneList is a list of ControlPlanes.
//
// +kubebuilder:object:root=true
type ControlPlaneList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ControlPlane `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ControlPlane{}, &ControlPlaneList{})
}
