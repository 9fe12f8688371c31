package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DataStoreSpec is a shared external etcd cluster and the credentials Marina
// needs to give each control plane a part of it.
type DataStoreSpec struct {
	// Endpoints of the etcd members, https only, such as
	// https://etcd-0.example.com:2379.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=9
	// +kubebuilder:validation:items:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.all(e, isURL(e) && url(e).getScheme() == 'https' && url(e).getHostname() != '')",message="every etcd endpoint must be an https URL"
	Endpoints []string `json:"endpoints"`

	// RootSecretRef is a Secret, in a namespace only the platform team and
	// Marina read, with a client certificate of etcd's root user (tls.crt
	// with common name root, tls.key) and the CA that signed the etcd
	// servers (ca.crt). Marina uses it to add and remove each control
	// plane's user and role and to delete its keys; no control plane and no
	// tenant ever gets it.
	// +required
	RootSecretRef NamespacedSecretReference `json:"rootSecretRef"`

	// ClientCASecretRef is a Secret with the CA that etcd trusts for client
	// certificates (tls.crt, tls.key): Marina signs with it one certificate
	// per control plane, whose common name is that control plane's etcd
	// user. Use a CA of its own for clients rather than the servers' CA, so
	// that its key cannot make a server certificate.
	// +required
	ClientCASecretRef NamespacedSecretReference `json:"clientCASecretRef"`

	// KeyPrefix under which Marina assigns each control plane its own
	// prefix, <keyPrefix>/<the ControlPlane's UID>, so that no two are
	// ever equal or nested.
	// +optional
	// +kubebuilder:default=/marina
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^(/[a-z0-9]([-a-z0-9_.]*[a-z0-9])?)+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.keyPrefix is immutable: the control planes' keys live under it"
	KeyPrefix string `json:"keyPrefix,omitempty"`
}

// NamespacedSecretReference points at a whole Secret in a given namespace;
// cluster-scoped objects use it.
type NamespacedSecretReference struct {
	// Namespace of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`

	// Name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// DataStoreStatus is the observed state of a DataStore.
type DataStoreStatus struct {
	// ObservedGeneration is the generation of the spec that status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, true when etcd answers with the root certificate
	// and its authentication is on.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ControlPlanes is the number of ControlPlanes that use the DataStore.
	// +optional
	ControlPlanes int32 `json:"controlPlanes,omitempty"`
}

// DataStore is a shared external etcd cluster that the platform team
// registers once, for many control planes: each ControlPlane that names it
// in spec.etcd.external.dataStore gets a key prefix, an etcd user and a role
// of its own, so it can read, write and delete only its own keys. The
// DataStore stays while a ControlPlane uses it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=marina
// +kubebuilder:printcolumn:name="Endpoints",type=string,JSONPath=`.spec.endpoints[0]`
// +kubebuilder:printcolumn:name="Control Planes",type=integer,JSONPath=`.status.controlPlanes`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DataStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the etcd cluster and its credentials.
	// +required
	Spec DataStoreSpec `json:"spec"`

	// Status is what Marina observed.
	// +optional
	Status DataStoreStatus `json:"status,omitempty"`
}

// DataStoreList is a list of DataStores.
//
// +kubebuilder:object:root=true
type DataStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DataStore `json:"items"`
}

// KeyPrefixFor is the prefix a control plane with uid gets in the DataStore.
func (d *DataStore) KeyPrefixFor(uid string) string {
	p := d.Spec.KeyPrefix
	if p == "" {
		p = "/marina"
	}
	return p + "/" + uid
}

// EtcdUserFor is the etcd user, and the name of its role, of a control plane
// with uid: the common name of its client certificate.
func EtcdUserFor(uid string) string { return "marina-" + uid }

func init() {
	SchemeBuilder.Register(&DataStore{}, &DataStoreList{})
}
