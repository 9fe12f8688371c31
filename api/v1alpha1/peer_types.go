package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PeerSpec is another data center's management cluster.
type PeerSpec struct {
	// DataCenter of the peer, as its ControlPlanes name it in
	// spec.dataCenter. Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="dataCenter is immutable"
	DataCenter string `json:"dataCenter"`

	// KubeconfigSecretRef is a Secret with a kubeconfig for the peer's
	// management cluster; key kubeconfig by default.
	// +required
	KubeconfigSecretRef NamespacedSecretKeyReference `json:"kubeconfigSecretRef"`

	// Suspend stops replication to this peer; what was replicated stays.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// PeerStatus is the observed state of a peer.
type PeerStatus struct {
	// ObservedGeneration is the generation of the spec that status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Reachable, Synced and the summary Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// LastSyncTime is when replication last changed something in the peer
	// or found it back in sync after a problem. A quiet federation leaves
	// it as it is: no writes while nothing changes.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`

	// ReplicatedObjects is the number of PolicySets, RegistrationPolicies
	// and MemberClusters the peer holds as replicas from here.
	// +optional
	ReplicatedObjects int32 `json:"replicatedObjects,omitempty"`

	// Conflicts lists the objects that were not replicated because the peer
	// holds an object of that kind and name that is not a replica from
	// here: made there, or replicated from a third data center. Neither
	// side overwrites the other; a person renames one.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=1024
	Conflicts []string `json:"conflicts,omitempty"`
}

// Peer is another data center's management cluster. The sync operator
// replicates the PolicySets, RegistrationPolicies and MemberClusters (with
// the kubeconfig each member's join needs) that originate here to it,
// labelled marina.dev/origin-data-center; the peer's own operators apply
// them to its control planes, so each data center keeps working on its own
// when another is lost. Deleting an original removes its replicas; deleting
// a Peer leaves them, for the peer's control planes keep serving them.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=marina
// +kubebuilder:printcolumn:name="Data Center",type=string,JSONPath=`.spec.dataCenter`
// +kubebuilder:printcolumn:name="Reachable",type=string,JSONPath=`.status.conditions[?(@.type=="Reachable")].status`
// +kubebuilder:printcolumn:name="Replicated",type=integer,JSONPath=`.status.replicatedObjects`
// +kubebuilder:printcolumn:name="Last Sync",type=date,JSONPath=`.status.lastSyncTime`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Peer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired peering.
	// +required
	Spec PeerSpec `json:"spec"`

	// Status is what Marina observed.
	// +optional
	Status PeerStatus `json:"status,omitempty"`
}

// PeerList is a list of Peers.
//
// +kubebuilder:object:root=true
type PeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Peer `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Peer{}, &PeerList{})
}
