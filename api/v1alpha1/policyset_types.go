package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// PolicySetSpec is a set of objects that must be identical in every selected
// control plane.
type PolicySetSpec struct {
	// Sources of the objects, applied in order; a later source wins when two
	// define the same object.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Sources []PolicySource `json:"sources"`

	// ControlPlaneSelector selects the ControlPlanes in this namespace that
	// receive the objects; an empty selector selects all of them.
	// +required
	ControlPlaneSelector metav1.LabelSelector `json:"controlPlaneSelector"`

	// Prune deletes objects this PolicySet applied earlier and no longer
	// contains. Objects Marina did not apply are never deleted.
	// +optional
	// +kubebuilder:default=true
	Prune *bool `json:"prune,omitempty"`

	// DriftMode says what happens when someone changes an applied object in a
	// control plane: Correct puts it back, Report only records it in status.
	// +optional
	// +kubebuilder:default=Correct
	// +kubebuilder:validation:Enum=Correct;Report
	DriftMode DriftMode `json:"driftMode,omitempty"`
}

// PolicySource is exactly one place that objects come from.
// +kubebuilder:validation:XValidation:rule="[has(self.inline), has(self.configMapRef), has(self.bundle), has(self.http)].filter(x, x).size() == 1",message="each source sets exactly one of inline, configMapRef, bundle or http"
type PolicySource struct {
	// Inline objects, each a complete Kubernetes object with apiVersion,
	// kind and metadata.name, such as a ClusterPropagationPolicy.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:XEmbeddedResource
	// +kubebuilder:validation:items:XValidation:rule="has(self.metadata.name) && self.metadata.name != ''",message="every inline object needs metadata.name"
	Inline []runtime.RawExtension `json:"inline,omitempty"`

	// ConfigMapRef is a ConfigMap in this namespace whose keys hold YAML
	// documents of objects.
	// +optional
	ConfigMapRef *ConfigMapReference `json:"configMapRef,omitempty"`

	// Bundle is the name of a default policy bundle shipped with Marina
	// (the policies folder of the release), such as baseline.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Bundle string `json:"bundle,omitempty"`

	// HTTP downloads a multi-document YAML, verified by its checksum.
	// +optional
	HTTP *HTTPSource `json:"http,omitempty"`
}

// ConfigMapReference names a ConfigMap and, optionally, one of its keys.
type ConfigMapReference struct {
	// Name of the ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// Key to read; every key is read when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// DriftMode says what happens to an applied object changed by someone else.
type DriftMode string

const (
	// DriftModeCorrect restores the object.
	DriftModeCorrect DriftMode = "Correct"
	// DriftModeReport records the drift in status and leaves the object.
	DriftModeReport DriftMode = "Report"
)

// PolicySetStatus is the observed state of a PolicySet.
type PolicySetStatus struct {
	// ObservedGeneration is the generation of the spec that status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: SourcesReady, Applied, Drifted and the summary Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Objects is the number of objects the sources define.
	// +optional
	Objects int32 `json:"objects,omitempty"`

	// Checksum is the SHA-256 of the objects as last applied; equal
	// checksums in two data centers mean identical policies.
	// +optional
	Checksum string `json:"checksum,omitempty"`

	// AppliedKinds are the kinds (group/version/Kind) of every object the
	// PolicySet has applied, so that objects of a kind that left the set
	// are still found and pruned.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	AppliedKinds []string `json:"appliedKinds,omitempty"`

	// Targets reports each selected control plane.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=256
	Targets []PolicySetTargetStatus `json:"targets,omitempty"`
}

// PolicySetTargetStatus is a PolicySet's state in one control plane.
type PolicySetTargetStatus struct {
	// Name of the ControlPlane.
	Name string `json:"name"`

	// Revision is the checksum of the objects last applied to this
	// control plane in full; it equals status.checksum once the control
	// plane has the current set.
	// +optional
	Revision string `json:"revision,omitempty"`
	// Applied is the number of objects in place and up to date.
	// +optional
	Applied int32 `json:"applied,omitempty"`

	// Drifted is the number of objects found changed at the last check.
	// +optional
	Drifted int32 `json:"drifted,omitempty"`
	// DriftedObjects names the changed objects (Kind namespace/name), the
	// first 16 of them.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	DriftedObjects []string `json:"driftedObjects,omitempty"`

	// LastAppliedTime is when the objects were last applied.
	// +optional
	LastAppliedTime *metav1.Time `json:"lastAppliedTime,omitempty"`

	// Conditions Applied and Drifted in this control plane.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PolicySet keeps a set of engine policies, namespaces and RBAC identical in
// every selected control plane, and through Peers in every data center.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ps,categories=marina
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="a PolicySet's name is a label value on every object it applies (marina.dev/policy-set): 63 characters at most"
// +kubebuilder:printcolumn:name="Objects",type=integer,JSONPath=`.status.objects`
// +kubebuilder:printcolumn:name="Checksum",type=string,JSONPath=`.status.checksum`,priority=1
// +kubebuilder:printcolumn:name="Drift Mode",type=string,JSONPath=`.spec.driftMode`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PolicySet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired set of objects.
	// +required
	Spec PolicySetSpec `json:"spec"`

	// Status is what Marina observed.
	// +optional
	Status PolicySetStatus `json:"status,omitempty"`
}

// PolicySetList is a list of PolicySets.
//
// +kubebuilder:object:root=true
type PolicySetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PolicySet `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PolicySet{}, &PolicySetList{})
}
