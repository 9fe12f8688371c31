package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RegistrationPolicySpec says which clusters are onboarded automatically and
// into which control planes.
type RegistrationPolicySpec struct {
	// Sources of member clusters; at least one.
	// +required
	Sources RegistrationSources `json:"sources"`

	// ControlPlaneSelector selects the ControlPlanes in this namespace that
	// matching clusters join, such as those of the cluster's own data center
	// and of a standby data center.
	// +required
	ControlPlaneSelector metav1.LabelSelector `json:"controlPlaneSelector"`

	// Approval is Automatic (matching clusters join at once) or Manual (a
	// MemberCluster is created with no control planes; a person adds them).
	// +optional
	// +kubebuilder:default=Automatic
	// +kubebuilder:validation:Enum=Automatic;Manual
	Approval Approval `json:"approval,omitempty"`

	// Template holds the engine properties of the MemberClusters the policy
	// creates.
	// +optional
	Template ClusterProperties `json:"template,omitempty"`
}

// RegistrationSources are the places member clusters come from.
// +kubebuilder:validation:XValidation:rule="has(self.clusterAPI) || has(self.kubeconfigSecrets)",message="at least one of sources.clusterAPI or sources.kubeconfigSecrets must be set"
type RegistrationSources struct {
	// ClusterAPI onboards Cluster API Clusters in this namespace.
	// +optional
	ClusterAPI *ClusterAPISource `json:"clusterAPI,omitempty"`

	// KubeconfigSecrets onboards clusters whose kubeconfig is in a labelled
	// Secret in this namespace.
	// +optional
	KubeconfigSecrets *KubeconfigSecretSource `json:"kubeconfigSecrets,omitempty"`
}

// ClusterAPISource selects Cluster API Clusters.
type ClusterAPISource struct {
	// Selector of the Clusters; every Cluster in the namespace when empty.
	// +optional
	Selector metav1.LabelSelector `json:"selector,omitempty"`
}

// KubeconfigSecretSource selects Secrets that hold kubeconfigs.
type KubeconfigSecretSource struct {
	// Selector of the Secrets. Required, so that no Secret is ever read as a
	// kubeconfig by accident.
	// +required
	// +kubebuilder:validation:XValidation:rule="(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",message="sources.kubeconfigSecrets.selector must not be empty"
	Selector metav1.LabelSelector `json:"selector"`

	// Key of the kubeconfig in each Secret.
	// +optional
	// +kubebuilder:default=kubeconfig
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// Approval says whether matching clusters join by themselves.
type Approval string

const (
	// ApprovalAutomatic joins matching clusters at once.
	ApprovalAutomatic Approval = "Automatic"
	// ApprovalManual waits for a person to name the control planes.
	ApprovalManual Approval = "Manual"
)

// RegistrationPolicyStatus is the observed state of a RegistrationPolicy.
type RegistrationPolicyStatus struct {
	// ObservedGeneration is the generation of the spec that status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// MatchedClusters is the number of source clusters the policy selects.
	// +optional
	MatchedClusters int32 `json:"matchedClusters,omitempty"`

	// MatchedControlPlanes is the number of control planes it selects.
	// +optional
	MatchedControlPlanes int32 `json:"matchedControlPlanes,omitempty"`
}

// RegistrationPolicy onboards member clusters automatically: Cluster API
// Clusters and labelled kubeconfig Secrets become MemberClusters joined to
// the selected control planes.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rp,categories=marina
// +kubebuilder:printcolumn:name="Approval",type=string,JSONPath=`.spec.approval`
// +kubebuilder:printcolumn:name="Clusters",type=integer,JSONPath=`.status.matchedClusters`
// +kubebuilder:printcolumn:name="Control Planes",type=integer,JSONPath=`.status.matchedControlPlanes`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RegistrationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired onboarding.
	// +required
	Spec RegistrationPolicySpec `json:"spec"`

	// Status is what Marina observed.
	// +optional
	Status RegistrationPolicyStatus `json:"status,omitempty"`
}

// RegistrationPolicyList is a list of RegistrationPolicies.
//
// +kubebuilder:object:root=true
type RegistrationPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RegistrationPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&RegistrationPolicy{}, &RegistrationPolicyList{})
}
