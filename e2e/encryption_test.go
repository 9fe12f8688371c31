package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	clientv3 "go.etcd.io/etcd/client/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

// kmsPrefix starts every value the API server stored through Marina's KMS
// provider (the provider name is the operator's, and never changes).
const kmsPrefix = "k8s:enc:kms:v2:marina-vault:"

// TestEncryptionAtRest runs a control plane whose Secrets are encrypted
// through the kms-vault sidecar with a transit key of the environment's
// Vault, and reads what lands in etcd directly: the KMS v2 prefix and no
// plaintext. A rotation of the key in Vault makes the operator rewrite every
// Secret with the new key version; Vault stopped for a while leaves the
// control plane serving, Degraded, and it recovers on its own.
func TestEncryptionAtRest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dc1 := env.DataCenters()[0]
	mgmt := mgmtClient(t, dc1.Kubeconfig())
	ns := tenantNamespace(ctx, t, mgmt, "e2e-kms")

	// A transit key of its own and a token that may only use it, as a
	// Vault administrator would hand out.
	v := env.Vault()
	admin, err := v.Client()
	if err != nil {
		t.Fatal(err)
	}
	key := "e2e-" + ns
	vaultDo(t, func() error {
		_, err := admin.Logical().WriteWithContext(ctx, v.Mount()+"/keys/"+key, map[string]any{"type": "aes256-gcm96"})
		return err
	})
	vaultDo(t, func() error {
		return admin.Sys().PutPolicyWithContext(ctx, "kms-"+ns, fmt.Sprintf(`
path "%[1]s/encrypt/%[2]s" { capabilities = ["update"] }
path "%[1]s/decrypt/%[2]s" { capabilities = ["update"] }
path "%[1]s/keys/%[2]s" { capabilities = ["read"] }
`, v.Mount(), key))
	})
	var token *vaultapi.Secret
	vaultDo(t, func() (err error) {
		token, err = admin.Auth().Token().CreateOrphanWithContext(ctx, &vaultapi.TokenCreateRequest{Policies: []string{"kms-" + ns}, TTL: "2h"})
		return err
	})
	mustCreate(ctx, t, mgmt, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vault-token"},
		Data:       map[string][]byte{"token": []byte(token.Auth.ClientToken)},
	})

	cp, err := env.ControlPlane(dc1, ns, "kms")
	if err != nil {
		t.Fatal(err)
	}
	cp.Spec.DeletionPolicy = marinav1alpha1.DeletionPolicyDelete
	cp.Spec.Encryption = &marinav1alpha1.EncryptionSpec{KMS: marinav1alpha1.KMSSpec{Vault: marinav1alpha1.VaultKMS{
		Address: v.URL(), TransitMount: v.Mount(), KeyName: key,
		Auth: marinav1alpha1.VaultAuth{Token: &marinav1alpha1.VaultTokenAuth{SecretRef: marinav1alpha1.SecretKeyReference{Name: "vault-token"}}},
	}}}
	start := time.Now()
	mustCreate(ctx, t, mgmt, cp)
	t.Cleanup(func() {
		_ = mgmt.Delete(context.Background(), cp)
	})
	waitReady(ctx, t, mgmt, cp, 5*time.Minute)
	t.Logf("encrypted control plane Ready %s after creation", time.Since(start).Round(time.Second))
	got := waitCondition(ctx, t, mgmt, cp, marinav1alpha1.ConditionEncryptionReady, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded)
	config := &corev1.Secret{}
	if err := mgmt.Get(ctx, client.ObjectKey{Namespace: ns, Name: "kms-encryption-config"}, config); err != nil {
		t.Fatal(err)
	}
	keyV1 := v.Mount() + "/" + key + ":v1"
	if c := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionEncryptionReady); c == nil || c.Status != metav1.ConditionTrue || got.Status.Encryption == nil || got.Status.Encryption.KeyID != keyV1 {
		t.Fatalf("EncryptionReady %+v, status.encryption %+v; want True with key %s", c, got.Status.Encryption, keyV1)
	}

	envCA, err := env.CA()
	if err != nil {
		t.Fatal(err)
	}
	fed := federationClient(ctx, t, mgmt, dc1, cp, envCA.Cert)
	etcdCli, err := env.ExternalEtcd().Client()
	if err != nil {
		t.Fatal(err)
	}
	defer etcdCli.Close()
	stored := func(name string) (value []byte, modRevision int64) {
		t.Helper()
		resp, err := etcdCli.Get(ctx, etcdPrefix(cp)+"/secrets/default/"+name)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("etcd: Secret %s: %v, %d keys", name, err, len(resp.Kvs))
		}
		return resp.Kvs[0].Value, resp.Kvs[0].ModRevision
	}
	plaintext := func(name string) string { return "plaintext of " + name + " in " + ns }
	createSecret := func(name string) {
		t.Helper()
		mustCreate(ctx, t, fed, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			StringData: map[string]string{"value": plaintext(name)},
		})
	}
	readable := func(names ...string) {
		t.Helper()
		for _, name := range names {
			s := &corev1.Secret{}
			if err := fed.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, s); err != nil {
				t.Errorf("read Secret %s: %v", name, err)
			} else if string(s.Data["value"]) != plaintext(name) {
				t.Errorf("Secret %s reads %q", name, s.Data["value"])
			}
		}
	}
	assertEncrypted := func(name, keyID string) {
		t.Helper()
		value, _ := stored(name)
		if !bytes.HasPrefix(value, []byte(kmsPrefix)) {
			t.Errorf("Secret %s is stored without the %q prefix: %.60q", name, kmsPrefix, value)
		}
		if bytes.Contains(value, []byte(plaintext(name))) {
			t.Errorf("Secret %s: its plaintext is in etcd", name)
		}
		// The KMS v2 envelope names the key ID the data key was sealed with.
		if !bytes.Contains(value, []byte(keyID)) {
			t.Errorf("Secret %s is not stored under key %s", name, keyID)
		}
	}

	createSecret("before-rotation")
	readable("before-rotation")
	assertEncrypted("before-rotation", keyV1)
	_, revBefore := stored("before-rotation")

	// Rotation: the operator notices the new version, waits until the API
	// server encrypts with it, and rewrites every Secret.
	rotated := time.Now()
	vaultDo(t, func() error {
		_, err := admin.Logical().WriteWithContext(ctx, v.Mount()+"/keys/"+key+"/rotate", nil)
		return err
	})
	keyV2 := v.Mount() + "/" + key + ":v2"
	waitFor(ctx, t, "the storage migration to "+keyV2, func() bool {
		got := &marinav1alpha1.ControlPlane{}
		if err := mgmt.Get(ctx, client.ObjectKeyFromObject(cp), got); err != nil {
			return false
		}
		c := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionEncryptionReady)
		es := got.Status.Encryption
		return es != nil && es.MigratedKeyID == keyV2 && es.Migration == nil && c != nil && c.Status == metav1.ConditionTrue
	})
	t.Logf("rotation to %s migrated %s after the rotation in Vault", keyV2, time.Since(rotated).Round(time.Second))
	createSecret("after-rotation")
	readable("before-rotation", "after-rotation")
	assertEncrypted("before-rotation", keyV2)
	assertEncrypted("after-rotation", keyV2)
	if _, rev := stored("before-rotation"); rev <= revBefore {
		t.Errorf("the migration did not rewrite Secret before-rotation (mod revision %d, was %d)", rev, revBefore)
	}

	// Vault down: the API server keeps serving reads from its cached data
	// keys, the condition says Degraded, and all recovers by itself.
	if err := v.Stop(); err != nil {
		t.Fatal(err)
	}
	vaultUp := false
	t.Cleanup(func() {
		if !vaultUp {
			_ = v.Start(context.Background())
		}
	})
	down := waitCondition(ctx, t, mgmt, cp, marinav1alpha1.ConditionEncryptionReady, metav1.ConditionFalse, marinav1alpha1.ReasonDegraded)
	if c := meta.FindStatusCondition(down.Status.Conditions, marinav1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue || c.Reason != marinav1alpha1.ReasonDegraded {
		t.Errorf("Ready while Vault is down: %+v; want True/Degraded", c)
	}
	readable("before-rotation", "after-rotation")
	stopped := time.Now()

	// A certificate renewal while Vault is down: new API server pods could
	// not start their KMS plugin, so the running ones are kept, for the
	// whole 5 minutes Vault stays down, and the renewal rolls them once it
	// is back.
	apiserver := &appsv1.Deployment{}
	if err := mgmt.Get(ctx, client.ObjectKey{Namespace: ns, Name: cp.Name + "-apiserver"}, apiserver); err != nil {
		t.Fatal(err)
	}
	generation := apiserver.Generation
	renewNow(ctx, t, mgmt, ns, cp.Name+"-apiserver")
	held := waitCondition(ctx, t, mgmt, cp, marinav1alpha1.ConditionAPIServerReady, metav1.ConditionTrue, marinav1alpha1.ReasonDegraded)
	if c := meta.FindStatusCondition(held.Status.Conditions, marinav1alpha1.ConditionAPIServerReady); !strings.Contains(c.Message, "is held while Vault does not answer") {
		t.Errorf("APIServerReady while the renewal waits for Vault: %s; want it to say the rollout is held", c.Message)
	}
	checks := 0
	for time.Since(stopped) < 5*time.Minute {
		if err := mgmt.Get(ctx, client.ObjectKeyFromObject(apiserver), apiserver); err != nil {
			t.Fatal(err)
		}
		if apiserver.Generation != generation {
			t.Fatalf("the API server's Deployment changed (generation %d → %d) while Vault was down %s", generation, apiserver.Generation, time.Since(stopped).Round(time.Second))
		}
		readable("before-rotation", "after-rotation")
		checks++
		time.Sleep(15 * time.Second)
	}
	t.Logf("Vault down %s during a certificate renewal: the API server's Deployment unchanged and both Secrets readable at each of %d checks", time.Since(stopped).Round(time.Second), checks)
	startCtx, cancelStart := context.WithTimeout(ctx, time.Minute)
	defer cancelStart()
	if err := v.Start(startCtx); err != nil {
		t.Fatal(err)
	}
	vaultUp = true
	waitCondition(ctx, t, mgmt, cp, marinav1alpha1.ConditionEncryptionReady, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded)
	// Now the renewal rolls the API server; its new pod serves.
	waitFor(ctx, t, "the held renewal to roll the API server", func() bool {
		return mgmt.Get(ctx, client.ObjectKeyFromObject(apiserver), apiserver) == nil && apiserver.Generation > generation
	})
	waitReady(ctx, t, mgmt, cp, 3*time.Minute)
	// The client talks to a pod: wait until the old one is gone.
	waitFor(ctx, t, "the API server's old pod to be gone and the new one ready", func() bool {
		pods := &corev1.PodList{}
		if mgmt.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/instance": cp.Name, "app.kubernetes.io/component": "apiserver"}) != nil || len(pods.Items) != 1 {
			return false
		}
		p := pods.Items[0]
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				return p.DeletionTimestamp == nil && c.Status == corev1.ConditionTrue
			}
		}
		return false
	})
	fed = federationClient(ctx, t, mgmt, dc1, cp, envCA.Cert)
	t.Logf("Vault back: the renewal rolled the API server %s after Vault stopped", time.Since(stopped).Round(time.Second))
	createSecret("after-outage")
	readable("before-rotation", "after-rotation", "after-outage")
	assertEncrypted("after-outage", keyV2)

	// The operator's own EncryptionConfiguration Secret was kept all along,
	// never pruned and made again.
	now := &corev1.Secret{}
	if err := mgmt.Get(ctx, client.ObjectKeyFromObject(config), now); err != nil || now.UID != config.UID {
		t.Errorf("the EncryptionConfiguration Secret was replaced or removed (uid %s, was %s): %v", now.UID, config.UID, err)
	}

	// Deletion takes the control plane's keys in etcd with it.
	if err := mgmt.Delete(ctx, cp); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the encrypted control plane to be deleted", func() bool {
		return mgmt.Get(ctx, client.ObjectKeyFromObject(cp), &marinav1alpha1.ControlPlane{}) != nil
	})
	if resp, err := etcdCli.Get(ctx, etcdPrefix(cp)+"/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || resp.Count != 0 {
		t.Errorf("after deletion: %v, %d keys left under %s", err, resp.Count, etcdPrefix(cp))
	}
}

func vaultDo(t *testing.T, do func() error) {
	t.Helper()
	if err := do(); err != nil {
		t.Fatalf("vault: %v", err)
	}
}
