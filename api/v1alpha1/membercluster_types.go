package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterProperties are the fields Marina passes through to the engine's
// Cluster object of a member, where the scheduler and policies select on them.
type ClusterProperties struct {
	// Provider of the member cluster's infrastructure, such as openstack.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Provider string `json:"provider,omitempty"`

	// Region the member cluster runs in.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Region string `json:"region,omitempty"`

	// Zones the member cluster spans.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=63
	Zones []string `json:"zones,omitempty"`

	// ClusterLabels are set as labels on the engine's Cluster object, for
	// placement by label selectors in propagation policies.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	ClusterLabels map[string]string `json:"clusterLabels,omitempty"`

	// Taints of the member cluster; only workloads that tolerate them are
	// scheduled to it.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(t, t.effect in ['NoSchedule', 'PreferNoSchedule', 'NoExecute'])",message="every taint's effect must be NoSchedule, PreferNoSchedule or NoExecute"
	Taints []corev1.Taint `json:"taints,omitempty"`

	// SyncMode is how the engine reaches the member. Marina joins members in
	// Push mode: the control plane's controllers talk to the member's API.
	// +optional
	// +kubebuilder:default=Push
	// +kubebuilder:validation:Enum=Push
	SyncMode SyncMode `json:"syncMode,omitempty"`
}

// SyncMode is how a control plane reaches a member cluster.
type SyncMode string

// SyncModePush means the control plane pushes to the member's API server.
const SyncModePush SyncMode = "Push"

// MemberClusterSpec is a member cluster and the control planes it joins.
// +kubebuilder:validation:XValidation:rule="has(self.kubeconfigSecretRef) != has(self.clusterRef)",message="exactly one of kubeconfigSecretRef or clusterRef must be set"
// +kubebuilder:validation:XValidation:rule="has(self.clusterRef) == has(oldSelf.clusterRef)",message="the credential source (kubeconfigSecretRef or clusterRef) is immutable"
type MemberClusterSpec struct {
	// KubeconfigSecretRef is a Secret in this namespace with a kubeconfig for
	// the member cluster; key kubeconfig by default. Marina reads it and
	// never changes or deletes it.
	// +optional
	KubeconfigSecretRef *SecretKeyReference `json:"kubeconfigSecretRef,omitempty"`

	// ClusterRef is a Cluster API Cluster in this namespace. Marina joins it
	// once its control plane is initialized and its <name>-kubeconfig Secret
	// exists, and waits while the Cluster is paused.
	// +optional
	ClusterRef *ClusterReference `json:"clusterRef,omitempty"`

	// ControlPlanes in this namespace that the member joins. Removing one
	// unjoins the member from it. A RegistrationPolicy fills this list for
	// the members it creates.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	ControlPlanes []ControlPlaneReference `json:"controlPlanes,omitempty"`

	ClusterProperties `json:",inline"`
}

// ClusterReference names a Cluster API Cluster.
type ClusterReference struct {
	// Name of the Cluster API Cluster.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
}

// MemberClusterStatus is the observed state of a member cluster.
type MemberClusterStatus struct {
	// ObservedGeneration is the generation of the spec that status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions of the member as a whole: Reachable and the summary Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ControlPlanes reports the member's state in each control plane.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	ControlPlanes []MemberControlPlaneStatus `json:"controlPlanes,omitempty"`

	// KubernetesVersion of the member's API server at the last probe.
	// +optional
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`

	// NodeCount is the number of nodes at the last probe.
	// +optional
	NodeCount int32 `json:"nodeCount,omitempty"`

	// JoinedControlPlanes is the number of control planes the member is
	// joined to now.
	// +optional
	JoinedControlPlanes int32 `json:"joinedControlPlanes,omitempty"`

	// Dispatcher is the control plane that dispatches workloads to the
	// member, as data-center/namespace/name: the holder of the member's
	// dispatch lease (a Lease marina-dispatcher in the member's
	// karmada-cluster namespace) when it was last read. Every other
	// control plane the member is joined to holds back.
	// +optional
	Dispatcher string `json:"dispatcher,omitempty"`

	// LastProbeTime is when Marina last reached the member's API server.
	// +optional
	LastProbeTime *metav1.Time `json:"lastProbeTime,omitempty"`
}

// MemberControlPlaneStatus is a member's state in one control plane.
type MemberControlPlaneStatus struct {
	// Name of the ControlPlane.
	Name string `json:"name"`

	// Conditions Joined, Ready and Dispatching of the member in this
	// control plane.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// MemberCluster is a member cluster and the federation control planes it is
// joined to. Marina creates the credentials and the engine's Cluster object
// in each control plane, and removes exactly those on unjoin.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mc,categories=marina
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 48 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name is the member's Cluster name in the engine: a DNS label of at most 48 characters"
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.kubernetesVersion`
// +kubebuilder:printcolumn:name="Nodes",type=integer,JSONPath=`.status.nodeCount`
// +kubebuilder:printcolumn:name="Joined",type=integer,JSONPath=`.status.joinedControlPlanes`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Dispatcher",type=string,JSONPath=`.status.dispatcher`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MemberCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired membership.
	// +required
	Spec MemberClusterSpec `json:"spec"`

	// Status is what Marina observed.
	// +optional
	Status MemberClusterStatus `json:"status,omitempty"`
}

// MemberClusterList is a list of MemberClusters.
//
// +kubebuilder:object:root=true
type MemberClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MemberCluster `json:"items"`
}

func init() {
	SchemeBuilder.Register(&MemberCluster{}, &MemberClusterList{})
}
