package controller_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/operators/controlplane/controller"
)

const kmsPluginImage = "marina.local/kms-vault:test"

func vaultControlPlane(ns, name string, auth marinav1alpha1.VaultAuth) *marinav1alpha1.ControlPlane {
	cp := externalEtcdControlPlane(ns, name)
	cp.Spec.Encryption = &marinav1alpha1.EncryptionSpec{KMS: marinav1alpha1.KMSSpec{Vault: marinav1alpha1.VaultKMS{
		Address: vaultSrv.URL(), KeyName: vaultSrv.Key(), Auth: auth,
	}}}
	return cp
}

func tokenAuth(secret string) marinav1alpha1.VaultAuth {
	return marinav1alpha1.VaultAuth{Token: &marinav1alpha1.VaultTokenAuth{SecretRef: marinav1alpha1.SecretKeyReference{Name: secret}}}
}

func apiServerDeployment(t *testing.T, ns, cp string) (*appsv1.Deployment, error) {
	t.Helper()
	d := &appsv1.Deployment{}
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: cp + "-apiserver"}, d)
	return d, err
}

// TestEncryptionSettingsAreCheckedAgainstVault walks a ControlPlane through
// the mistakes a person makes with Vault settings, each reported with its
// reason while no API server is deployed, then through working settings:
// the EncryptionConfiguration, the plugin sidecar, the key ID in the status.
// Then Vault goes away (Degraded, the Deployment stays) and comes back.
func TestEncryptionSettingsAreCheckedAgainstVault(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	createSecret(t, ns, "etcd-client", etcdTLS)
	createCA(t, ns, "enc-ca")

	cp := vaultControlPlane(ns, "enc", tokenAuth("vault-token"))
	create(t, cp)
	got := waitCondition(t, cp, marinav1alpha1.ConditionEncryptionReady, metav1.ConditionFalse, marinav1alpha1.ReasonSecretNotFound)
	assertMessage(t, got, marinav1alpha1.ConditionEncryptionReady, "spec.encryption.kms.vault.auth.token.secretRef")
	waitEvent(t, cp, corev1.EventTypeWarning, marinav1alpha1.ReasonSecretNotFound)

	createSecret(t, ns, "vault-token", map[string][]byte{"token": []byte("not-a-token")})
	got = waitCondition(t, cp, marinav1alpha1.ConditionEncryptionReady, metav1.ConditionFalse, marinav1alpha1.ReasonVaultAuthFailed)
	assertMessage(t, got, marinav1alpha1.ConditionEncryptionReady, vaultSrv.URL())

	// The key name first: with the right token and key the settings would
	// work, and the API server would be deployed.
	patch(t, cp, func(cp *marinav1alpha1.ControlPlane) { cp.Spec.Encryption.KMS.Vault.KeyName = "no-such-key" })
	waitFor(t, "the operator to see the new key name", func() bool {
		got := &marinav1alpha1.ControlPlane{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(cp), got); err != nil {
			return false
		}
		c := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionEncryptionReady)
		return c != nil && c.ObservedGeneration == got.Generation
	})
	sec := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "vault-token"}, sec); err != nil {
		t.Fatal(err)
	}
	sec.Data["token"] = []byte(vaultSrv.RootToken)
	if err := k8s.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	got = waitCondition(t, cp, marinav1alpha1.ConditionEncryptionReady, metav1.ConditionFalse, marinav1alpha1.ReasonTransitKeyNotFound)
	assertMessage(t, got, marinav1alpha1.ConditionEncryptionReady, "no-such-key")

	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	patch(t, cp, func(cp *marinav1alpha1.ControlPlane) {
		cp.Spec.Encryption.KMS.Vault.KeyName = vaultSrv.Key()
		cp.Spec.Encryption.KMS.Vault.Address = fmt.Sprintf("http://127.0.0.1:%d", port)
	})
	got = waitCondition(t, cp, marinav1alpha1.ConditionEncryptionReady, metav1.ConditionFalse, marinav1alpha1.ReasonVaultUnreachable)
	// Every mistake so far kept the API server from being deployed.
	if d, err := apiServerDeployment(t, ns, "enc"); !apierrors.IsNotFound(err) {
		t.Fatalf("an API server was deployed with Vault settings that do not work: %v %v %v", err, d.CreationTimestamp.Format(time.StampMilli), conditionsWithTimes(got))
	}

	patch(t, cp, func(cp *marinav1alpha1.ControlPlane) { cp.Spec.Encryption.KMS.Vault.Address = vaultSrv.URL() })
	// The settings work; what is stored is rewritten once an API server
	// answers, which never happens here (no kubelet runs the pods).
	got = waitCondition(t, cp, marinav1alpha1.ConditionEncryptionReady, metav1.ConditionFalse, marinav1alpha1.ReasonKeyRotationInProgress)
	wantKey := vaultSrv.Mount() + "/" + vaultSrv.Key() + ":v1"
	if es := got.Status.Encryption; es == nil || es.KeyID != wantKey || es.MigratedKeyID != "" {
		t.Errorf("status.encryption = %+v, want key ID %s, nothing migrated yet", es, wantKey)
	}
	assertEncryptionConfig(t, ns, "enc", []string{"secrets"})
	d := waitAPIServerDeployment(t, ns, "enc")
	assertPluginSidecar(t, d, "--token-file=/etc/marina/vault-auth/token")

	// Vault goes away with settings that worked: an outage, not a mistake.
	if err := vaultSrv.Stop(); err != nil {
		t.Fatal(err)
	}
	vaultUp := false
	t.Cleanup(func() {
		if !vaultUp {
			_ = vaultSrv.Start(context.Background())
		}
	})
	got = waitCondition(t, cp, marinav1alpha1.ConditionEncryptionReady, metav1.ConditionFalse, marinav1alpha1.ReasonDegraded)
	assertMessage(t, got, marinav1alpha1.ConditionEncryptionReady, "cached data keys")
	waitEvent(t, cp, corev1.EventTypeWarning, marinav1alpha1.ReasonDegraded)
	if _, err := apiServerDeployment(t, ns, "enc"); err != nil {
		t.Errorf("the API server's Deployment is gone while Vault is down: %v", err)
	}
	// A change to the API server's pods waits: new pods could not start
	// their plugin. The condition says so; the pods run on unchanged.
	patch(t, cp, func(cp *marinav1alpha1.ControlPlane) {
		cp.Spec.Components.APIServer.ExtraArgs = map[string]string{"profiling": "true"}
	})
	waitFor(t, "APIServerReady to say the change is held", func() bool {
		c := &marinav1alpha1.ControlPlane{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(cp), c); err != nil {
			return false
		}
		cond := meta.FindStatusCondition(c.Status.Conditions, marinav1alpha1.ConditionAPIServerReady)
		return cond != nil && cond.ObservedGeneration == c.Generation && strings.Contains(cond.Message, "is held while Vault does not answer")
	})
	profiled := func() bool {
		d, err := apiServerDeployment(t, ns, "enc")
		return err == nil && slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--profiling=true")
	}
	if profiled() {
		t.Error("the API server's pods were changed while Vault was down")
	}
	if err := vaultSrv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	vaultUp = true
	waitCondition(t, cp, marinav1alpha1.ConditionEncryptionReady, metav1.ConditionFalse, marinav1alpha1.ReasonKeyRotationInProgress)
	// Vault is back: the change rolls.
	waitFor(t, "the held change to roll once Vault answers", profiled)
	d = waitAPIServerDeployment(t, ns, "enc")

	// Resources can be added, which rolls the API servers onto the new
	// configuration, but never removed.
	before := d.Spec.Template.Annotations["checksum.marina.dev/encryption"]
	if before == "" {
		t.Errorf("the API server pods carry no checksum of the encryption configuration: %v", d.Spec.Template.Annotations)
	}
	patch(t, cp, func(cp *marinav1alpha1.ControlPlane) {
		cp.Spec.Encryption.Resources = append(cp.Spec.Encryption.Resources, "configmaps")
	})
	waitFor(t, "the configuration and the pods' checksum to follow", func() bool {
		d, err := apiServerDeployment(t, ns, "enc")
		return err == nil && d.Spec.Template.Annotations["checksum.marina.dev/encryption"] != before
	})
	assertEncryptionConfig(t, ns, "enc", []string{"secrets", "configmaps"})

	// Neither a resource nor encryption itself can be taken away again:
	// the data needs the key.
	current := &marinav1alpha1.ControlPlane{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(cp), current); err != nil {
		t.Fatal(err)
	}
	// Merge patches, without a resourceVersion: the operator's status
	// writes must not turn the validation error looked for into a conflict.
	fewer := current.DeepCopy()
	fewer.Spec.Encryption.Resources = []string{"configmaps"}
	if err := k8s.Patch(ctx, fewer, client.MergeFrom(current)); err == nil || !strings.Contains(err.Error(), "spec.encryption.resources can only grow") {
		t.Errorf("removing secrets from spec.encryption.resources: err = %v, want a validation error naming it", err)
	}
	off := current.DeepCopy()
	off.Spec.Encryption = nil
	if err := k8s.Patch(ctx, off, client.MergeFrom(current)); err == nil || !strings.Contains(err.Error(), "spec.encryption cannot be removed") {
		t.Errorf("removing spec.encryption: err = %v, want a validation error naming it", err)
	}
}

// TestEncryptionWithKubernetesAuth: the plugin's service account logs in to
// Vault's Kubernetes auth method, which reviews the token with this API
// server. The operator creates the service account, checks the login with a
// token of it, and mounts a projected token into the plugin only.
func TestEncryptionWithKubernetesAuth(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	createSecret(t, ns, "etcd-client", etcdTLS)
	createCA(t, ns, "kube-ca")

	admin, err := vaultSrv.Client()
	if err != nil {
		t.Fatal(err)
	}
	mount := "kubernetes-" + ns
	caPEM := apiServer.CAData
	if len(caPEM) == 0 {
		t.Fatal("the test API server's client config has no CA")
	}
	if block, _ := pem.Decode(caPEM); block == nil {
		t.Fatal("the test API server's CA is not PEM")
	}
	// Vault reviews the plugin's tokens with a reviewer of its own, bound to
	// system:auth-delegator as on a real cluster: the plugin's tokens carry
	// only Vault's audience, so they cannot call the API server themselves.
	reviewer := create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vault-reviewer"}})
	crb := create(t, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vault-reviewer-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: reviewer.GetName()}},
	})
	t.Cleanup(func() { _ = k8s.Delete(ctx, crb) })
	reviewerToken := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	if err := k8s.SubResource("token").Create(ctx, reviewer, reviewerToken); err != nil {
		t.Fatalf("token of Vault's reviewer: %v", err)
	}
	vaultWrite(t, admin, "sys/auth/"+mount, map[string]any{"type": "kubernetes"})
	vaultWrite(t, admin, "auth/"+mount+"/config", map[string]any{
		"kubernetes_host": apiServer.Host, "kubernetes_ca_cert": string(caPEM), "disable_local_ca_jwt": true,
		"token_reviewer_jwt": reviewerToken.Status.Token,
	})
	vaultWrite(t, admin, "sys/policies/acl/kms-"+ns, map[string]any{"policy": fmt.Sprintf(`
path "%[1]s/encrypt/%[2]s" { capabilities = ["update"] }
path "%[1]s/decrypt/%[2]s" { capabilities = ["update"] }
path "%[1]s/keys/%[2]s" { capabilities = ["read"] }
`, vaultSrv.Mount(), vaultSrv.Key())})
	// The role requires Vault's audience: a token for the API server (no
	// audience asked for) would be refused.
	vaultWrite(t, admin, "auth/"+mount+"/role/kms", map[string]any{
		"bound_service_account_names": "kube-kms-vault", "bound_service_account_namespaces": ns,
		"audience": marinav1alpha1.DefaultVaultAudience, "token_policies": "kms-" + ns, "token_ttl": "1h",
	})

	cp := vaultControlPlane(ns, "kube", marinav1alpha1.VaultAuth{Kubernetes: &marinav1alpha1.VaultKubernetesAuth{Path: mount, Role: "not-the-role"}})
	create(t, cp)
	got := waitCondition(t, cp, marinav1alpha1.ConditionEncryptionReady, metav1.ConditionFalse, marinav1alpha1.ReasonVaultAuthFailed)
	assertMessage(t, got, marinav1alpha1.ConditionEncryptionReady, "auth/"+mount)

	patch(t, cp, func(cp *marinav1alpha1.ControlPlane) { cp.Spec.Encryption.KMS.Vault.Auth.Kubernetes.Role = "kms" })
	waitCondition(t, cp, marinav1alpha1.ConditionEncryptionReady, metav1.ConditionFalse, marinav1alpha1.ReasonKeyRotationInProgress)
	d := waitAPIServerDeployment(t, ns, "kube")
	if d.Spec.Template.Spec.ServiceAccountName != "kube-kms-vault" {
		t.Errorf("API server pods run as %q, want the plugin's service account", d.Spec.Template.Spec.ServiceAccountName)
	}
	assertPluginSidecar(t, d, "--kubernetes-role=kms")
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, m := range c.VolumeMounts {
			if m.Name == "vault-sa-token" {
				t.Errorf("container %s mounts the Vault login token; only the plugin may", c.Name)
			}
		}
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name != "vault-sa-token" || v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if tok := src.ServiceAccountToken; tok != nil && tok.Audience != marinav1alpha1.DefaultVaultAudience {
				t.Errorf("the plugin's projected token has audience %q, want only %q", tok.Audience, marinav1alpha1.DefaultVaultAudience)
			}
		}
	}
	sa := &corev1.ServiceAccount{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: controller.KMSServiceAccountName(cp)}, sa); err != nil {
		t.Fatalf("the plugin's service account: %v", err)
	}
}

func vaultWrite(t *testing.T, c *vaultapi.Client, path string, data map[string]any) {
	t.Helper()
	if _, err := c.Logical().Write(path, data); err != nil {
		t.Fatalf("vault write %s: %v", path, err)
	}
}

func waitAPIServerDeployment(t *testing.T, ns, cp string) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	waitFor(t, "the API server's Deployment", func() bool {
		var err error
		d, err = apiServerDeployment(t, ns, cp)
		return err == nil
	})
	return d
}

func assertPluginSidecar(t *testing.T, d *appsv1.Deployment, wantArg string) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if len(spec.InitContainers) != 1 {
		t.Fatalf("API server pod has %d init containers, want the kms-vault sidecar", len(spec.InitContainers))
	}
	plugin := spec.InitContainers[0]
	if plugin.Image != kmsPluginImage || plugin.RestartPolicy == nil || *plugin.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("plugin container: image %s, restartPolicy %v; want %s as a native sidecar", plugin.Image, plugin.RestartPolicy, kmsPluginImage)
	}
	args := strings.Join(plugin.Args, " ")
	for _, want := range []string{"--vault-address=" + vaultSrv.URL(), "--key=" + vaultSrv.Key(), wantArg} {
		if !strings.Contains(args, want) {
			t.Errorf("plugin args %q lack %q", args, want)
		}
	}
	apiArgs := strings.Join(spec.Containers[0].Args, " ")
	if !strings.Contains(apiArgs, "--encryption-provider-config=/etc/marina/encryption/config.yaml") {
		t.Errorf("kube-apiserver args lack the encryption provider config: %s", apiArgs)
	}
}

// assertEncryptionConfig checks the EncryptionConfiguration the operator
// wrote: KMS v2 through the plugin's socket first, identity after it.
func assertEncryptionConfig(t *testing.T, ns, cp string, resources []string) {
	t.Helper()
	sec := &corev1.Secret{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: cp + "-encryption-config"}, sec); err != nil {
		t.Fatalf("EncryptionConfiguration Secret: %v", err)
	}
	var cfg struct {
		Kind      string `json:"kind"`
		Resources []struct {
			Resources []string         `json:"resources"`
			Providers []map[string]any `json:"providers"`
		} `json:"resources"`
	}
	if err := yaml.Unmarshal(sec.Data["config.yaml"], &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Kind != "EncryptionConfiguration" || len(cfg.Resources) != 1 || strings.Join(cfg.Resources[0].Resources, ",") != strings.Join(resources, ",") {
		t.Fatalf("EncryptionConfiguration:\n%s", sec.Data["config.yaml"])
	}
	p := cfg.Resources[0].Providers
	kms, _ := p[0]["kms"].(map[string]any)
	if len(p) != 2 || kms["apiVersion"] != "v2" || kms["endpoint"] != "unix:///var/run/kmsplugin/socket.sock" || p[1]["identity"] == nil {
		t.Errorf("providers = %v, want kms v2 on the plugin's socket, then identity", p)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func conditionsWithTimes(cp *marinav1alpha1.ControlPlane) string {
	var b strings.Builder
	for _, c := range cp.Status.Conditions {
		fmt.Fprintf(&b, "\n%s %s %s %s", c.LastTransitionTime.Format(time.StampMilli), c.Type, c.Status, c.Reason)
	}
	return b.String()
}
