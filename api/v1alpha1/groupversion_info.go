// Package v1alpha1 holds Marina's API: ControlPlane, MemberCluster,
// RegistrationPolicy, PolicySet and Peer in the group marina.dev.
//
// +kubebuilder:object:generate=true
// +groupName=marina.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every Marina kind.
	GroupVersion = schema.GroupVersion{Group: "marina.dev", Version: "v1alpha1"}

	// SchemeBuilder registers Marina's kinds with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds Marina's kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
