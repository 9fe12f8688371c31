package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/kmsvault"
	"github.com/marina-platform/marina/internal/urlpolicy"
)

const (
	// kmsProviderName names the KMS provider in the EncryptionConfiguration.
	// It is part of every encrypted value's prefix in etcd
	// (k8s:enc:kms:v2:marina-vault:), so it must never change.
	kmsProviderName = "marina-vault"
	// kmsEndpoint is the plugin's socket in the API server pod's shared
	// volume (charts/controlplane/templates/apiserver.yaml).
	kmsEndpoint = "unix:///var/run/kmsplugin/socket.sock"
	// encryptionConfigKey is the Secret key the chart mounts as config.yaml.
	encryptionConfigKey = "config.yaml"
	// vaultCheckTimeout bounds the operator's own look at Vault.
	vaultCheckTimeout = 10 * time.Second
	// DefaultVaultPollInterval is how often the operator asks Vault for the
	// transit key's latest version to notice a rotation.
	DefaultVaultPollInterval = time.Minute
)

// Flags are marina-controlplane's own command-line flags.
type Flags struct {
	KMSPluginImage    string
	VaultPollInterval time.Duration
	ClusterDomain     string
	URLPolicy         urlpolicy.Policy
	PodCIDRs          cidrList
}

// Bind registers the flags on fs.
func (f *Flags) Bind(fs *flag.FlagSet) {
	fs.StringVar(&f.KMSPluginImage, "kms-plugin-image", "",
		"image of the kms-vault KMS plugin run next to the API servers of control planes with spec.encryption; without it those are refused")
	fs.DurationVar(&f.VaultPollInterval, "vault-poll-interval", DefaultVaultPollInterval,
		"how often Vault is asked for the transit key's latest version, to notice a rotation")
	fs.StringVar(&f.ClusterDomain, "cluster-domain", "cluster.local",
		"DNS domain of the management cluster, in the names of certificates and of the Services the federation API server reaches")
	fs.Var(&f.PodCIDRs, "cluster-pod-cidrs",
		"comma-separated pod CIDRs of the management cluster: control planes' API servers admit every address outside them (clients from outside the cluster); empty admits every address")
	fs.Var(&f.URLPolicy.Allowed, "allowed-url-hosts",
		"comma-separated hosts the URLs of a ControlPlane (CRD bundle, proxy, Vault) may name: host names, *.domain, IP addresses, CIDR prefixes; empty allows any")
	fs.Var(&f.URLPolicy.PlainHTTP, "vault-plain-http-hosts",
		"comma-separated hosts (same patterns) of Vault servers that may be reached over plain http; every other Vault needs https")
}

// cidrList is a flag.Value of comma-separated CIDR prefixes.
type cidrList []string

func (l *cidrList) String() string { return strings.Join(*l, ",") }

func (l *cidrList) Set(v string) error {
	var out cidrList
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR prefix such as 10.244.0.0/16", p)
		}
		out = append(out, pfx.Masked().String())
	}
	*l = out
	return nil
}

// EncryptionConfigSecretName is the Secret holding a control plane's
// EncryptionConfiguration.
func EncryptionConfigSecretName(cp *marinav1alpha1.ControlPlane) string {
	return cp.Name + "-encryption-config"
}

// KMSServiceAccountName is the KMS plugin's service account, used with
// Vault's Kubernetes auth method.
func KMSServiceAccountName(cp *marinav1alpha1.ControlPlane) string { return cp.Name + "-kms-vault" }

// reconcileEncryption checks that Vault, the credentials and the transit key
// work before any API server is given the plugin, then writes the
// EncryptionConfiguration. A problem with new settings stops here, so the
// running API servers keep their working configuration and no data is
// touched. Vault becoming unreachable with settings that worked before is an
// outage instead: the API servers keep serving with their cached data keys,
// the condition says Degraded, and the operator looks again soon.
func (r *Reconciler) reconcileEncryption(ctx context.Context, s *scope) (result, error) {
	const cond = marinav1alpha1.ConditionEncryptionReady
	cp := s.cp
	enc := cp.Spec.Encryption
	if enc == nil {
		s.set(cond, metav1.ConditionTrue, marinav1alpha1.ReasonDisabled,
			"spec.encryption is not set: resources are stored unencrypted in etcd")
		return proceed, nil
	}
	if r.KMSPluginImage == "" {
		s.blocked(cond, marinav1alpha1.ReasonEncryptionUnsupported,
			"spec.encryption is set but the operator runs without --kms-plugin-image (the marina chart's operators.controlplane.kmsPlugin.image); the control plane is not started unencrypted")
		return waitForChange(), nil
	}
	if err := r.applyKind(ctx, s, "ServiceAccount"); err != nil {
		return proceed, err
	}

	vk := &enc.KMS.Vault
	cfg, hash, reason, msg, err := r.vaultConfig(ctx, s)
	if err != nil {
		return proceed, err
	}
	if reason != "" {
		s.blocked(cond, reason, msg)
		return retryAfter(r.RetryAfter), nil
	}
	keyID, err := r.checkVault(ctx, cp, cfg, hash)
	if err != nil {
		reason := vaultReason(err)
		where := fmt.Sprintf("Vault at %s (transit key %s/%s)", vk.Address, vk.TransitMount, vk.KeyName)
		es := cp.Status.Encryption
		if reason == marinav1alpha1.ReasonVaultUnreachable && es != nil && es.VaultConfigHash == hash {
			s.set(cond, metav1.ConditionFalse, marinav1alpha1.ReasonDegraded, fmt.Sprintf(
				"%s does not answer: %v. The API servers keep serving with their cached data keys; new data keys cannot be made until Vault is back", where, err))
			s.degraded = true
			s.requeue(r.RetryAfter)
			return proceed, nil
		}
		s.blocked(cond, reason, fmt.Sprintf("%s: %v; the API servers are not given these settings until they work", where, err))
		return retryAfter(r.RetryAfter), nil
	}

	if err := r.applyEncryptionConfig(ctx, s); err != nil {
		return proceed, err
	}
	es := cp.Status.Encryption
	if es == nil {
		// Even a new control plane migrates once: with external etcd the
		// keys of an earlier one of the same name may still be there.
		es = &marinav1alpha1.EncryptionStatus{}
		cp.Status.Encryption = es
	}
	es.KeyID, es.VaultConfigHash = keyID, hash
	if es.Migration == nil && es.MigratedKeyID == es.KeyID && sameSet(es.MigratedResources, enc.Resources) {
		s.done(cond, fmt.Sprintf("%s encrypted with Vault transit key %s", strings.Join(enc.Resources, ", "), keyID))
	} else if es.Migration == nil {
		// The migration stage, once the API server answers, says more.
		s.set(cond, metav1.ConditionFalse, marinav1alpha1.ReasonKeyRotationInProgress, fmt.Sprintf(
			"stored %s are to be rewritten with transit key %s once the API servers use it", strings.Join(enc.Resources, ", "), keyID))
	}
	s.requeue(r.vaultPollInterval())
	return proceed, nil
}

func vaultReason(err error) string {
	switch {
	case errors.Is(err, kmsvault.ErrAuth):
		return marinav1alpha1.ReasonVaultAuthFailed
	case errors.Is(err, kmsvault.ErrKeyNotFound):
		return marinav1alpha1.ReasonTransitKeyNotFound
	}
	return marinav1alpha1.ReasonVaultUnreachable
}

// vaultConfig turns spec.encryption.kms.vault into the plugin's settings,
// reading the credentials the plugin will mount. A non-empty reason is a
// problem for the user, told in msg. hash identifies the settings.
func (r *Reconciler) vaultConfig(ctx context.Context, s *scope) (cfg kmsvault.Config, hash, reason, msg string, err error) {
	cp := s.cp
	vk := &cp.Spec.Encryption.KMS.Vault
	cfg = kmsvault.Config{
		Address: vk.Address, Namespace: vk.Namespace, TransitMount: vk.TransitMount, KeyName: vk.KeyName,
		Timeout: vaultCheckTimeout / 2, MaxRetries: 1,
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", vk.Address, vk.Namespace, vk.TransitMount, vk.KeyName)

	read := func(ref marinav1alpha1.SecretKeyReference, defKey, field string) ([]byte, bool, error) {
		key := ref.KeyOr(defKey)
		sec := &corev1.Secret{}
		err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: ref.Name}, sec)
		if apierrors.IsNotFound(err) {
			reason, msg = marinav1alpha1.ReasonSecretNotFound, fmt.Sprintf("Secret %s/%s named in %s does not exist; create it", cp.Namespace, ref.Name, field)
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("read Secret %s: %w", ref.Name, err)
		}
		v := sec.Data[key]
		if len(strings.TrimSpace(string(v))) == 0 {
			reason, msg = marinav1alpha1.ReasonInvalidSecret, fmt.Sprintf("Secret %s/%s named in %s has no key %q, or it is empty", cp.Namespace, ref.Name, field, key)
			return nil, false, nil
		}
		fmt.Fprintf(h, "%s/%s\x00", ref.Name, key)
		return v, true, nil
	}

	const field = "spec.encryption.kms.vault"
	if ref := vk.CABundleSecretRef; ref != nil {
		ca, ok, err := read(*ref, marinav1alpha1.DefaultVaultCABundleKey, field+".caBundleSecretRef")
		if err != nil || !ok {
			return cfg, "", reason, msg, err
		}
		cfg.CACert = ca
	}
	a := vk.Auth
	switch {
	case a.Token != nil:
		tok, ok, err := read(a.Token.SecretRef, marinav1alpha1.DefaultVaultTokenKey, field+".auth.token.secretRef")
		if err != nil || !ok {
			return cfg, "", reason, msg, err
		}
		cfg.Auth.Token = string(tok)
	case a.AppRole != nil:
		sid, ok, err := read(a.AppRole.SecretIDSecretRef, marinav1alpha1.DefaultAppRoleSecretIDKey, field+".auth.appRole.secretIDSecretRef")
		if err != nil || !ok {
			return cfg, "", reason, msg, err
		}
		cfg.Auth.AppRolePath, cfg.Auth.RoleID, cfg.Auth.SecretID = a.AppRole.Path, a.AppRole.RoleID, string(sid)
		fmt.Fprintf(h, "approle:%s:%s\x00", a.AppRole.Path, a.AppRole.RoleID)
	case a.Kubernetes != nil:
		// The operator logs in as the plugin will: with a token of the
		// plugin's service account, which Vault reviews with this cluster.
		tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			Audiences: []string{a.Kubernetes.AudienceOrDefault()}, ExpirationSeconds: ptr.To[int64](600),
		}}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: cp.Namespace, Name: KMSServiceAccountName(cp)}}
		if err := r.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
			return cfg, "", "", "", fmt.Errorf("request a token of service account %s: %w", sa.Name, err)
		}
		cfg.Auth.KubernetesPath, cfg.Auth.KubernetesRole, cfg.Auth.ServiceAccountToken = a.Kubernetes.Path, a.Kubernetes.Role, tr.Status.Token
		fmt.Fprintf(h, "kubernetes:%s:%s\x00", a.Kubernetes.Path, a.Kubernetes.Role)
	}
	return cfg, hex.EncodeToString(h.Sum(nil))[:16], "", "", nil
}

// The EncryptionConfiguration, in the shape of apiserver.config.k8s.io/v1
// (its Go types live in k8s.io/apiserver, which the operator does not
// otherwise need).
type encryptionConfiguration struct {
	APIVersion string                  `json:"apiVersion"`
	Kind       string                  `json:"kind"`
	Resources  []resourceConfiguration `json:"resources"`
}

type resourceConfiguration struct {
	Resources []string                `json:"resources"`
	Providers []providerConfiguration `json:"providers"`
}

type providerConfiguration struct {
	KMS      *kmsConfiguration `json:"kms,omitempty"`
	Identity *struct{}         `json:"identity,omitempty"`
}

type kmsConfiguration struct {
	APIVersion string `json:"apiVersion"`
	Name       string `json:"name"`
	Endpoint   string `json:"endpoint"`
	Timeout    string `json:"timeout"`
}

// EncryptionConfig is the API server's EncryptionConfiguration: the KMS v2
// plugin writes and reads the resources; identity reads what was stored
// before encryption was turned on, until the migration rewrote it.
func EncryptionConfig(resources []string) ([]byte, error) {
	return yaml.Marshal(encryptionConfiguration{
		APIVersion: "apiserver.config.k8s.io/v1",
		Kind:       "EncryptionConfiguration",
		Resources: []resourceConfiguration{{
			Resources: resources,
			Providers: []providerConfiguration{
				{KMS: &kmsConfiguration{APIVersion: "v2", Name: kmsProviderName, Endpoint: kmsEndpoint, Timeout: "10s"}},
				{Identity: &struct{}{}},
			},
		}},
	})
}

func (r *Reconciler) applyEncryptionConfig(ctx context.Context, s *scope) error {
	cp := s.cp
	data, err := EncryptionConfig(cp.Spec.Encryption.Resources)
	if err != nil {
		return err
	}
	sec := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: EncryptionConfigSecretName(cp), Namespace: cp.Namespace, Labels: ownLabels(cp, "apiserver")},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{encryptionConfigKey: data},
	}
	u, err := toUnstructured(sec)
	if err != nil {
		return err
	}
	return r.apply(ctx, cp, u)
}

// applyKind applies the rendered objects of one kind.
func (r *Reconciler) applyKind(ctx context.Context, s *scope, kind string) error {
	for _, obj := range s.objects {
		if obj.GetKind() != kind {
			continue
		}
		if err := r.apply(ctx, s.cp, obj); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reconciler) vaultPollInterval() time.Duration {
	if r.VaultPollInterval > 0 {
		return r.VaultPollInterval
	}
	return DefaultVaultPollInterval
}

// vaultCheck is the last successful look at Vault for a control plane.
type vaultCheck struct {
	hash, keyID string
	at          time.Time
}

// checkVault returns the transit key's current key ID, logging in with the
// control plane's settings. A success is reused for the poll interval while
// the settings stay the same: the migration reconciles many times a
// second, and every AppRole or Kubernetes login makes a Vault token.
func (r *Reconciler) checkVault(ctx context.Context, cp *marinav1alpha1.ControlPlane, cfg kmsvault.Config, hash string) (string, error) {
	r.vaultMu.Lock()
	last, ok := r.vaultChecks[cp.UID]
	r.vaultMu.Unlock()
	if ok && last.hash == hash && time.Since(last.at) < r.vaultPollInterval() {
		return last.keyID, nil
	}
	svc, err := kmsvault.New(cfg, nil)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, vaultCheckTimeout)
	defer cancel()
	st, err := svc.Status(ctx)
	// The operator's token is only for this look; the plugin logs in on
	// its own.
	svc.Logout(ctx)
	if err != nil {
		return "", err
	}
	r.vaultMu.Lock()
	defer r.vaultMu.Unlock()
	if r.vaultChecks == nil {
		r.vaultChecks = map[types.UID]vaultCheck{}
	}
	r.vaultChecks[cp.UID] = vaultCheck{hash: hash, keyID: st.KeyID, at: time.Now()}
	return st.KeyID, nil
}

// forgetVaultCheck drops a deleted control plane's cached check.
func (r *Reconciler) forgetVaultCheck(uid types.UID) {
	r.vaultMu.Lock()
	defer r.vaultMu.Unlock()
	delete(r.vaultChecks, uid)
}

// encryptionChecksum identifies the EncryptionConfiguration's content.
func encryptionChecksum(resources []string) string {
	data, _ := EncryptionConfig(resources)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// sameSet says whether a and b hold the same resources, in any order.
func sameSet(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(x string) bool { return !slices.Contains(b, x) })
}
