package v1alpha1

// SecretKeyReference points at one key of a Secret in the namespace of the
// object that holds the reference.
type SecretKeyReference struct {
	// Name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// Key in the Secret's data. Each field that uses this type documents its
	// default key.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// KeyOr is the key the reference names, or def, the key its field
// documents as the default.
func (r SecretKeyReference) KeyOr(def string) string {
	if r.Key == "" {
		return def
	}
	return r.Key
}

// Default keys of the Secrets spec.encryption.kms.vault names.
const (
	DefaultVaultCABundleKey   = "ca.crt"
	DefaultVaultTokenKey      = "token"
	DefaultAppRoleSecretIDKey = "secret-id"
)

// SecretReference points at a whole Secret in the namespace of the object
// that holds the reference.
type SecretReference struct {
	// Name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// NamespacedSecretKeyReference points at one key of a Secret in a given
// namespace; cluster-scoped objects use it.
type NamespacedSecretKeyReference struct {
	// Namespace of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`

	SecretKeyReference `json:",inline"`
}

// ControlPlaneReference names a ControlPlane in the namespace of the object
// that holds the reference.
type ControlPlaneReference struct {
	// Name of the ControlPlane.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
}

// HTTPSource is a document downloaded over HTTP(S) and verified against a
// SHA-256 checksum before it is used, so that air-gapped sites can serve it
// from a mirror of their own.
type HTTPSource struct {
	// URL of the document, http or https.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="url must be an absolute http or https URL"
	URL string `json:"url"`

	// SHA256 is the expected hex-encoded SHA-256 checksum of the document.
	// A download whose checksum differs is rejected and never applied.
	// +required
	// +kubebuilder:validation:Pattern=`^[a-f0-9]{64}$`
	SHA256 string `json:"sha256"`

	// ProxyURL is an HTTP proxy to download through; by default the document
	// is fetched directly.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="proxyURL must be an absolute http or https URL"
	ProxyURL string `json:"proxyURL,omitempty"`
}
