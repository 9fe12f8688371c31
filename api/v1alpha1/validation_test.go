package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/testenv"
)

// These tests run the CRDs of charts/marina/crds in a real kube-apiserver:
// what they accept and reject is exactly what a user's kubectl sees.

var (
	env *testenv.Env
	k8s client.Client
)

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	k8s = env.Client
	ctx := context.Background()
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// name gives every object a unique name so the cases share one API server.
func name(t *testing.T) string {
	t.Helper()
	n := []byte(strings.ToLower(t.Name()))
	for i, c := range n {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			n[i] = '-'
		}
	}
	// At most 41 characters starting with a letter: a valid ControlPlane
	// name (a DNS-1035 label of at most 42) and a valid name of every kind.
	if len(n) > 34 {
		n = n[len(n)-34:]
	}
	s := strings.Trim(string(n), "-")
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		s = "x" + s
	}
	return s + fmt.Sprintf("-%d", time.Now().UnixNano()%100000)
}

func TestFullExamplesAreAccepted(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		kind string
		obj  func(string) client.Object
	}{
		{"ControlPlane with external etcd, own CA, Vault KMS and HTTP CRDs", func(n string) client.Object { return fullControlPlane(n) }},
		{"ControlPlane with local etcd and a ClusterIssuer", func(n string) client.Object { return minimalControlPlane(n) }},
		{"MemberCluster from Cluster API", func(n string) client.Object { return fullMemberCluster(n) }},
		{"MemberCluster from a kubeconfig Secret", func(n string) client.Object { return kubeconfigMemberCluster(n) }},
		{"RegistrationPolicy", func(n string) client.Object { return fullRegistrationPolicy(n) }},
		{"PolicySet with every source", func(n string) client.Object { return fullPolicySet(n) }},
		{"Peer", func(n string) client.Object { return fullPeer(n) }},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			obj := tc.obj(name(t))
			want := obj.DeepCopyObject().(client.Object)
			if err := k8s.Create(ctx, obj); err != nil {
				t.Fatalf("create: %v", err)
			}
			t.Cleanup(func() { _ = k8s.Delete(ctx, obj) })

			got := want.DeepCopyObject().(client.Object)
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), got); err != nil {
				t.Fatalf("get: %v", err)
			}
			// Nothing the user wrote may be pruned or changed on the way in.
			if diff := specDiff(want, got); diff != "" {
				t.Errorf("stored spec differs from what was written: %s", diff)
			}
		})
	}
}

// specDiff reports fields the user set that the API server lost or changed;
// fields the server added (defaults) are ignored here and tested below.
func specDiff(want, got client.Object) string {
	w, err := runtime.DefaultUnstructuredConverter.ToUnstructured(want)
	if err != nil {
		return err.Error()
	}
	g, err := runtime.DefaultUnstructuredConverter.ToUnstructured(got)
	if err != nil {
		return err.Error()
	}
	return subsetDiff("spec", w["spec"], g["spec"])
}

func subsetDiff(path string, want, got any) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: want object, got %v", path, got)
		}
		for k, wv := range w {
			if d := subsetDiff(path+"."+k, wv, g[k]); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: want %v, got %v", path, want, got)
		}
		for i := range w {
			if d := subsetDiff(fmt.Sprintf("%s[%d]", path, i), w[i], g[i]); d != "" {
				return d
			}
		}
		return ""
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) {
			return fmt.Sprintf("%s: want %v, got %v", path, want, got)
		}
		return ""
	}
}

func TestDefaults(t *testing.T) {
	ctx := context.Background()

	cp := minimalControlPlane(name(t))
	if err := k8s.Create(ctx, cp); err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, cp) })
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(cp), cp); err != nil {
		t.Fatal(err)
	}
	s := cp.Spec
	checks := []struct {
		field     string
		got, want any
	}{
		{"spec.imagePullPolicy", s.ImagePullPolicy, corev1.PullIfNotPresent},
		{"spec.deletionPolicy", s.DeletionPolicy, v1.DeletionPolicyRetain},
		{"spec.etcd.local.replicas", s.Etcd.Local.Replicas, int32(1)},
		{"spec.etcd.local.storage.type", s.Etcd.Local.Storage.Type, v1.EtcdStoragePersistentVolumeClaim},
		{"spec.etcd.local.storage.size", s.Etcd.Local.Storage.Size.String(), "8Gi"},
		{"spec.certificates.duration", s.Certificates.Duration.Duration, 2160 * time.Hour},
		{"spec.certificates.renewBefore", s.Certificates.RenewBefore, (*metav1.Duration)(nil)},
		{"spec.certificates.issuerRef.group", s.Certificates.IssuerRef.Group, "cert-manager.io"},
		{"spec.crds.policy", s.CRDs.Policy, v1.CRDPolicyIfNotPresent},
		{"spec.components.apiServer.service.type", s.Components.APIServer.Service.Type, corev1.ServiceTypeClusterIP},
		{"spec.components.apiServer.antiAffinity", s.Components.APIServer.AntiAffinity, v1.AntiAffinityPreferred},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s defaulted to %v, want %v", c.field, c.got, c.want)
		}
	}

	withVault := minimalControlPlane(name(t) + "-kms")
	withVault.Spec.Encryption = &v1.EncryptionSpec{KMS: v1.KMSSpec{Vault: v1.VaultKMS{
		Address: "http://127.0.0.1:8200", KeyName: "k",
		Auth: v1.VaultAuth{Kubernetes: &v1.VaultKubernetesAuth{Role: "kms"}},
	}}}
	if err := k8s.Create(ctx, withVault); err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, withVault) })
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(withVault), withVault); err != nil {
		t.Fatal(err)
	}
	vault := withVault.Spec.Encryption.KMS.Vault
	if vault.TransitMount != "transit" || vault.Auth.Kubernetes.Path != "kubernetes" || vault.Auth.Kubernetes.Audience != "vault" {
		t.Errorf("vault defaults: transitMount %q, auth.kubernetes.path %q, audience %q; want transit, kubernetes, vault",
			vault.TransitMount, vault.Auth.Kubernetes.Path, vault.Auth.Kubernetes.Audience)
	}
	if got := withVault.Spec.Encryption.Resources; len(got) != 1 || got[0] != "secrets" {
		t.Errorf("spec.encryption.resources defaulted to %v, want [secrets]", got)
	}

	mc := kubeconfigMemberCluster(name(t))
	if err := k8s.Create(ctx, mc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, mc) })
	if mc.Spec.SyncMode != v1.SyncModePush {
		t.Errorf("MemberCluster spec.syncMode defaulted to %q, want Push", mc.Spec.SyncMode)
	}

	rp := fullRegistrationPolicy(name(t))
	rp.Spec.Approval = ""
	rp.Spec.Sources.KubeconfigSecrets.Key = ""
	if err := k8s.Create(ctx, rp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, rp) })
	if rp.Spec.Approval != v1.ApprovalAutomatic || rp.Spec.Sources.KubeconfigSecrets.Key != "kubeconfig" {
		t.Errorf("RegistrationPolicy defaults: approval %q, kubeconfigSecrets.key %q; want Automatic, kubeconfig", rp.Spec.Approval, rp.Spec.Sources.KubeconfigSecrets.Key)
	}

	ps := fullPolicySet(name(t))
	ps.Spec.Prune, ps.Spec.DriftMode = nil, ""
	if err := k8s.Create(ctx, ps); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, ps) })
	if ps.Spec.Prune == nil || !*ps.Spec.Prune || ps.Spec.DriftMode != v1.DriftModeCorrect {
		t.Errorf("PolicySet defaults: prune %v, driftMode %q; want true, Correct", ps.Spec.Prune, ps.Spec.DriftMode)
	}
}

// invalid is an object the API server must reject, with the field path and a
// piece of the message a person would read.
type invalid struct {
	name      string
	obj       func(n string) client.Object
	field     string
	inMessage string
}

// dataStore is a valid DataStore.
func dataStore(name string) *v1.DataStore {
	return &v1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.DataStoreSpec{
			Endpoints:         []string{"https://etcd-0.fra1.example.com:2379"},
			RootSecretRef:     v1.NamespacedSecretReference{Namespace: "platform", Name: "etcd-root"},
			ClientCASecretRef: v1.NamespacedSecretReference{Namespace: "platform", Name: "etcd-client-ca"},
		},
	}
}

func cpWith(mutate func(*v1.ControlPlane)) func(string) client.Object {
	return func(n string) client.Object {
		cp := fullControlPlane(n)
		mutate(cp)
		return cp
	}
}

func localCPWith(mutate func(*v1.ControlPlane)) func(string) client.Object {
	return func(n string) client.Object {
		cp := minimalControlPlane(n)
		mutate(cp)
		return cp
	}
}

func mcWith(mutate func(*v1.MemberCluster)) func(string) client.Object {
	return func(n string) client.Object {
		mc := fullMemberCluster(n)
		mutate(mc)
		return mc
	}
}

func rpWith(mutate func(*v1.RegistrationPolicy)) func(string) client.Object {
	return func(n string) client.Object {
		rp := fullRegistrationPolicy(n)
		mutate(rp)
		return rp
	}
}

func psWith(mutate func(*v1.PolicySet)) func(string) client.Object {
	return func(n string) client.Object {
		ps := fullPolicySet(n)
		mutate(ps)
		return ps
	}
}

func peerWith(mutate func(*v1.Peer)) func(string) client.Object {
	return func(n string) client.Object {
		p := fullPeer(n)
		mutate(p)
		return p
	}
}

func vaultWith(mutate func(*v1.VaultKMS)) func(string) client.Object {
	return cpWith(func(cp *v1.ControlPlane) { mutate(&cp.Spec.Encryption.KMS.Vault) })
}

func TestInvalidObjectsAreRejected(t *testing.T) {
	ctx := context.Background()
	cases := []invalid{
		// ControlPlane: its name prefixes Services and other objects.
		{"name longer than 42 characters", cpWith(func(cp *v1.ControlPlane) { cp.Name = "cp-" + strings.Repeat("a", 40) }), "metadata.name", "at most 42 characters"},
		{"name starting with a digit", cpWith(func(cp *v1.ControlPlane) { cp.Name = "1" + cp.Name }), "metadata.name", "DNS-1035 label"},

		// ControlPlane: version, data center, images.
		{"version without v", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Version = "1.16.0" }), "spec.version", "should match"},
		{"unsupported engine minor", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Version = "v1.15.3" }), "spec.version", "supported engine minors are v1.16, v1.17 and v1.18"},
		{"engine controller manager without the aggregated API server", cpWith(func(cp *v1.ControlPlane) {
			cp.Spec.Components.AggregatedAPIServer.Enabled = ptr.To(false)
		}), "spec.components.aggregatedAPIServer.enabled", "the engine's controllerManager, scheduler, metricsAdapter, search and descheduler need the aggregatedAPIServer"},
		{"engine scheduler without the aggregated API server", cpWith(func(cp *v1.ControlPlane) {
			cp.Spec.Components.AggregatedAPIServer.Enabled = ptr.To(false)
			cp.Spec.Components.ControllerManager.Enabled = ptr.To(false)
		}), "spec.components.aggregatedAPIServer.enabled", "need the aggregatedAPIServer"},
		{"metrics adapter (on by default) without the aggregated API server", cpWith(func(cp *v1.ControlPlane) {
			c := &cp.Spec.Components
			c.AggregatedAPIServer.Enabled, c.ControllerManager.Enabled, c.Scheduler.Enabled, c.Search.Enabled = ptr.To(false), ptr.To(false), ptr.To(false), ptr.To(false)
		}), "spec.components.aggregatedAPIServer.enabled", "need the aggregatedAPIServer"},
		{"descheduler without the aggregated API server", cpWith(func(cp *v1.ControlPlane) {
			c := &cp.Spec.Components
			c.AggregatedAPIServer.Enabled, c.ControllerManager.Enabled, c.Scheduler.Enabled, c.Search.Enabled, c.MetricsAdapter.Enabled = ptr.To(false), ptr.To(false), ptr.To(false), ptr.To(false), ptr.To(false)
			c.Descheduler.Enabled = ptr.To(true)
		}), "spec.components.aggregatedAPIServer.enabled", "need the aggregatedAPIServer"},
		{"estimator timeout of an hour", cpWith(func(cp *v1.ControlPlane) {
			cp.Spec.Components.Scheduler.Estimator.Timeout = &metav1.Duration{Duration: time.Hour}
		}), "spec.components.scheduler.estimator.timeout", "between 100ms and 1m"},
		{"estimator port 0 is defaulted, 70000 is not a port", cpWith(func(cp *v1.ControlPlane) {
			cp.Spec.Components.Scheduler.Estimator.Port = 70000
		}), "spec.components.scheduler.estimator.port", "less than or equal to 65535"},
		{"data center not a DNS label", cpWith(func(cp *v1.ControlPlane) { cp.Spec.DataCenter = "FRA_1" }), "spec.dataCenter", "should match"},
		{"image registry with a scheme", cpWith(func(cp *v1.ControlPlane) { cp.Spec.ImageRegistry = "https://registry.example.com" }), "spec.imageRegistry", "should match"},
		{"unknown pull policy", cpWith(func(cp *v1.ControlPlane) { cp.Spec.ImagePullPolicy = "Sometimes" }), "spec.imagePullPolicy", "Unsupported value"},
		{"priority class not a DNS name", cpWith(func(cp *v1.ControlPlane) { cp.Spec.PriorityClassName = "Critical_Tier" }), "spec.priorityClassName", "should match"},
		{"unknown deletion policy", cpWith(func(cp *v1.ControlPlane) { cp.Spec.DeletionPolicy = "Purge" }), "spec.deletionPolicy", "Unsupported value"},

		// ControlPlane: etcd.
		{"both local and external etcd", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Etcd.Local = &v1.LocalEtcd{} }), "spec.etcd", "exactly one of etcd.local or etcd.external"},
		{"neither local nor external etcd", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Etcd = v1.EtcdSpec{} }), "spec.etcd", "exactly one of etcd.local or etcd.external"},
		{"even number of local etcd members", localCPWith(func(cp *v1.ControlPlane) { cp.Spec.Etcd.Local.Replicas = 2 }), "spec.etcd.local.replicas", "Unsupported value"},
		{"too many local etcd members", localCPWith(func(cp *v1.ControlPlane) { cp.Spec.Etcd.Local.Replicas = 7 }), "spec.etcd.local.replicas", "Unsupported value"},
		{"etcd volume below 1Gi", localCPWith(func(cp *v1.ControlPlane) { cp.Spec.Etcd.Local.Storage.Size = ptr.To(resource.MustParse("100Mi")) }), "spec.etcd.local.storage.size", "at least 1Gi"},
		{"storage class with emptyDir", localCPWith(func(cp *v1.ControlPlane) {
			cp.Spec.Etcd.Local.Storage = v1.EtcdStorage{Type: v1.EtcdStorageEmptyDir, StorageClassName: ptr.To("fast")}
		}), "spec.etcd.local.storage", "storageClassName is only valid with type PersistentVolumeClaim"},
		{"plain http etcd endpoint", cpWith(func(cp *v1.ControlPlane) {
			cp.Spec.Etcd.External.Endpoints = []string{"http://etcd-0.fra1.example.com:2379"}
		}), "spec.etcd.external.endpoints", "must be an https URL"},
		{"no etcd endpoints", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Etcd.External.Endpoints = []string{} }), "spec.etcd.external", "endpoints, tlsSecretRef and keyPrefix are all required"},
		{"duplicate etcd endpoints", cpWith(func(cp *v1.ControlPlane) {
			cp.Spec.Etcd.External.Endpoints = []string{"https://etcd-0:2379", "https://etcd-0:2379"}
		}), "spec.etcd.external.endpoints[1]", "Duplicate value"},
		{"key prefix without leading slash", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Etcd.External.KeyPrefix = "marina/fra1" }), "spec.etcd.external.keyPrefix", "should match"},
		{"key prefix is the root", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Etcd.External.KeyPrefix = "/" }), "spec.etcd.external.keyPrefix", "should match"},
		{"key prefix with trailing slash", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Etcd.External.KeyPrefix = "/marina/fra1/" }), "spec.etcd.external.keyPrefix", "should match"},
		{"etcd TLS Secret without name", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Etcd.External.TLSSecretRef.Name = "" }), "spec.etcd.external.tlsSecretRef.name", "at least 1 chars"},
		{"DataStore and endpoints of its own", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Etcd.External.DataStore = "shared" }), "spec.etcd.external", "either dataStore or endpoints, tlsSecretRef and keyPrefix"},
		{"DataStore with a key prefix", cpWith(func(cp *v1.ControlPlane) {
			cp.Spec.Etcd.External = &v1.ExternalEtcd{DataStore: "shared", KeyPrefix: "/marina/dc1"}
		}), "spec.etcd.external", "either dataStore or endpoints"},
		{"endpoints without a key prefix", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Etcd.External.KeyPrefix = "" }), "spec.etcd.external", "endpoints, tlsSecretRef and keyPrefix are all required"},
		{"DataStore with a plain http endpoint", func(n string) client.Object {
			ds := dataStore(n)
			ds.Spec.Endpoints = []string{"http://etcd-0:2379"}
			return ds
		}, "spec.endpoints", "must be an https URL"},
		{"DataStore without a root Secret namespace", func(n string) client.Object {
			ds := dataStore(n)
			ds.Spec.RootSecretRef.Namespace = ""
			return ds
		}, "spec.rootSecretRef.namespace", "at least 1 chars"},
		{"neither DataStore nor endpoints", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Etcd.External = &v1.ExternalEtcd{} }), "spec.etcd.external", "not neither"},
		{"DataStore name not a DNS name", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Etcd.External = &v1.ExternalEtcd{DataStore: "Shared_Etcd"} }), "spec.etcd.external.dataStore", "should match"},

		// ControlPlane: certificates.
		{"both CA Secret and issuer", cpWith(func(cp *v1.ControlPlane) {
			cp.Spec.Certificates.IssuerRef = &v1.IssuerReference{Name: "pki"}
		}), "spec.certificates", "exactly one of certificates.caSecretRef or certificates.issuerRef"},
		{"neither CA Secret nor issuer", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Certificates.CASecretRef = nil }), "spec.certificates", "exactly one of certificates.caSecretRef or certificates.issuerRef"},
		{"renewBefore not shorter than duration", cpWith(func(cp *v1.ControlPlane) {
			cp.Spec.Certificates.RenewBefore = &metav1.Duration{Duration: 3000 * time.Hour}
		}), "spec.certificates", "renewBefore must be shorter than certificates.duration"},
		{"certificate duration under an hour", cpWith(func(cp *v1.ControlPlane) {
			cp.Spec.Certificates.Duration = &metav1.Duration{Duration: 30 * time.Minute}
			cp.Spec.Certificates.RenewBefore = nil
		}), "spec.certificates.duration", "at least 1h"},
		{"unknown issuer kind", localCPWith(func(cp *v1.ControlPlane) { cp.Spec.Certificates.IssuerRef.Kind = "Vault" }), "spec.certificates.issuerRef.kind", "Unsupported value"},
		{"extra SAN neither DNS name nor IP", cpWith(func(cp *v1.ControlPlane) {
			cp.Spec.Certificates.ExtraSANs = []string{"api.example.com", "not a name!"}
		}), "spec.certificates.extraSANs", "DNS name or an IP address"},

		// ControlPlane: encryption.
		{"vault address without scheme", vaultWith(func(v *v1.VaultKMS) { v.Address = "vault.example.com:8200" }), "spec.encryption.kms.vault.address", "absolute http or https URL"},
		{"vault auth missing", vaultWith(func(v *v1.VaultKMS) { v.Auth = v1.VaultAuth{} }), "spec.encryption.kms.vault.auth", "exactly one of auth.token, auth.appRole or auth.kubernetes"},
		{"two vault auth methods", vaultWith(func(v *v1.VaultKMS) {
			v.Auth.Token = &v1.VaultTokenAuth{SecretRef: v1.SecretKeyReference{Name: "vault-token"}}
		}), "spec.encryption.kms.vault.auth", "exactly one of auth.token, auth.appRole or auth.kubernetes"},
		{"empty transit key name", vaultWith(func(v *v1.VaultKMS) { v.KeyName = "" }), "spec.encryption.kms.vault.keyName", "at least 1 chars"},
		{"transit mount with a leading slash", vaultWith(func(v *v1.VaultKMS) { v.TransitMount = "/transit" }), "spec.encryption.kms.vault.transitMount", "should match"},
		{"encrypted resource not a resource name", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Encryption.Resources = []string{"Secrets!"} }), "spec.encryption.resources[0]", "should match"},

		// ControlPlane: components.
		{"zero API server replicas", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Components.APIServer.Replicas = ptr.To[int32](0) }), "spec.components.apiServer.replicas", "greater than or equal to 1"},
		{"eleven scheduler replicas", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Components.Scheduler.Replicas = ptr.To[int32](11) }), "spec.components.scheduler.replicas", "less than or equal to 10"},
		{"extra arg with dashes", cpWith(func(cp *v1.ControlPlane) {
			cp.Spec.Components.APIServer.ExtraArgs = map[string]string{"--v": "4"}
		}), "spec.components.apiServer.extraArgs", "flag names without leading dashes"},
		{"node port with ClusterIP service", cpWith(func(cp *v1.ControlPlane) {
			cp.Spec.Components.APIServer.Service.Type = corev1.ServiceTypeClusterIP
		}), "spec.components.apiServer.service", "nodePort needs service.type NodePort or LoadBalancer"},
		{"node port out of range", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Components.APIServer.Service.NodePort = ptr.To[int32](443) }), "spec.components.apiServer.service.nodePort", "greater than or equal to 30000"},
		{"unknown anti-affinity", cpWith(func(cp *v1.ControlPlane) { cp.Spec.Components.Webhook.AntiAffinity = "Always" }), "spec.components.webhook.antiAffinity", "Unsupported value"},

		// ControlPlane: CRDs.
		{"CRD URL with ftp scheme", cpWith(func(cp *v1.ControlPlane) { cp.Spec.CRDs.HTTP.URL = "ftp://mirror.example.com/crds.tar.gz" }), "spec.crds.http.url", "absolute http or https URL"},
		{"CRD URL not a URL", cpWith(func(cp *v1.ControlPlane) { cp.Spec.CRDs.HTTP.URL = "crds.tar.gz" }), "spec.crds.http.url", "absolute http or https URL"},
		{"CRD checksum too short", cpWith(func(cp *v1.ControlPlane) { cp.Spec.CRDs.HTTP.SHA256 = "9f86d081" }), "spec.crds.http.sha256", "should match"},
		{"CRD checksum missing", cpWith(func(cp *v1.ControlPlane) { cp.Spec.CRDs.HTTP.SHA256 = "" }), "spec.crds.http.sha256", "should match"},
		{"proxy URL without scheme", cpWith(func(cp *v1.ControlPlane) { cp.Spec.CRDs.HTTP.ProxyURL = "proxy.example.com:3128" }), "spec.crds.http.proxyURL", "absolute http or https URL"},
		{"unknown CRD policy", cpWith(func(cp *v1.ControlPlane) { cp.Spec.CRDs.Policy = "Sometimes" }), "spec.crds.policy", "Unsupported value"},

		// MemberCluster.
		{"member with kubeconfig and Cluster API", mcWith(func(mc *v1.MemberCluster) {
			mc.Spec.KubeconfigSecretRef = &v1.SecretKeyReference{Name: "kc"}
		}), "spec", "exactly one of kubeconfigSecretRef or clusterRef"},
		{"member without credentials", mcWith(func(mc *v1.MemberCluster) { mc.Spec.ClusterRef = nil }), "spec", "exactly one of kubeconfigSecretRef or clusterRef"},
		{"member in pull mode", mcWith(func(mc *v1.MemberCluster) { mc.Spec.SyncMode = "Pull" }), "spec.syncMode", "Unsupported value"},
		{"member joins a control plane twice", mcWith(func(mc *v1.MemberCluster) {
			mc.Spec.ControlPlanes = []v1.ControlPlaneReference{{Name: "fra1-primary"}, {Name: "fra1-primary"}}
		}), "spec.controlPlanes[1]", "Duplicate value"},
		{"Cluster API name not a DNS label", mcWith(func(mc *v1.MemberCluster) { mc.Spec.ClusterRef.Name = "Workload_1" }), "spec.clusterRef.name", "should match"},
		{"member name longer than the engine's 48", mcWith(func(mc *v1.MemberCluster) { mc.Name = "m-" + strings.Repeat("x", 47) }), "metadata.name", "at most 48 characters"},
		{"taint without effect", mcWith(func(mc *v1.MemberCluster) { mc.Spec.Taints[0].Effect = "" }), "spec.taints", "effect must be NoSchedule, PreferNoSchedule or NoExecute"},

		// RegistrationPolicy.
		{"registration without sources", rpWith(func(rp *v1.RegistrationPolicy) { rp.Spec.Sources = v1.RegistrationSources{} }), "spec.sources", "at least one of sources.clusterAPI or sources.kubeconfigSecrets"},
		{"kubeconfig Secrets selected by an empty selector", rpWith(func(rp *v1.RegistrationPolicy) {
			rp.Spec.Sources.KubeconfigSecrets.Selector = metav1.LabelSelector{}
		}), "spec.sources.kubeconfigSecrets.selector", "must not be empty"},
		{"unknown approval", rpWith(func(rp *v1.RegistrationPolicy) { rp.Spec.Approval = "Sometimes" }), "spec.approval", "Unsupported value"},

		// PolicySet.
		{"policy set without sources", psWith(func(ps *v1.PolicySet) { ps.Spec.Sources = []v1.PolicySource{} }), "spec.sources", "at least 1 items"},
		{"source with two kinds", psWith(func(ps *v1.PolicySet) { ps.Spec.Sources[0].ConfigMapRef = &v1.ConfigMapReference{Name: "x"} }), "spec.sources[0]", "exactly one of inline, configMapRef, bundle or http"},
		{"empty source", psWith(func(ps *v1.PolicySet) { ps.Spec.Sources[1] = v1.PolicySource{} }), "spec.sources[1]", "exactly one of inline, configMapRef, bundle or http"},
		{"inline object without kind", psWith(func(ps *v1.PolicySet) {
			ps.Spec.Sources[3].Inline[1] = runtime.RawExtension{Raw: []byte(`{"apiVersion":"v1","metadata":{"name":"payments"}}`)}
		}), "spec.sources[3].inline[1].kind", "Required value"},
		{"inline object without name", psWith(func(ps *v1.PolicySet) {
			ps.Spec.Sources[3].Inline[0] = runtime.RawExtension{Raw: []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"labels":{"a":"b"}}}`)}
		}), "spec.sources[3].inline[0]", "every inline object needs metadata.name"},
		{"policy download with a bad checksum", psWith(func(ps *v1.PolicySet) {
			ps.Spec.Sources[2].HTTP.SHA256 = strings.ToUpper(ps.Spec.Sources[2].HTTP.SHA256)
		}), "spec.sources[2].http.sha256", "should match"},
		{"bundle name with a path", psWith(func(ps *v1.PolicySet) { ps.Spec.Sources[0].Bundle = "../secrets" }), "spec.sources[0].bundle", "should match"},
		{"unknown drift mode", psWith(func(ps *v1.PolicySet) { ps.Spec.DriftMode = "Ignore" }), "spec.driftMode", "Unsupported value"},
		{"policy set name longer than a label value", psWith(func(ps *v1.PolicySet) { ps.Name = strings.Repeat("p", 64) }), "", "63 characters at most"},

		// Peer.
		{"peer data center not a DNS label", peerWith(func(p *v1.Peer) { p.Spec.DataCenter = "AMS 2" }), "spec.dataCenter", "should match"},
		{"peer Secret without namespace", peerWith(func(p *v1.Peer) { p.Spec.KubeconfigSecretRef.Namespace = "" }), "spec.kubeconfigSecretRef.namespace", "at least 1 chars"},
	}
	if len(cases) < 25 {
		t.Fatalf("the issue asks for at least 25 invalid objects; the table has %d", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := tc.obj(name(t))
			err := k8s.Create(ctx, obj)
			if err == nil {
				_ = k8s.Delete(ctx, obj)
				t.Fatalf("created; want rejected on %s", tc.field)
			}
			assertInvalid(t, err, tc.field, tc.inMessage)
		})
	}
}

// assertInvalid checks that err is a validation error whose message names
// the field and says what is wrong.
func assertInvalid(t *testing.T, err error, field, inMessage string) {
	t.Helper()
	if !apierrors.IsInvalid(err) {
		t.Fatalf("want an Invalid error, got %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, field+":") && !strings.Contains(msg, field+" ") {
		t.Errorf("message does not name the field %s:\n%s", field, msg)
	}
	if !strings.Contains(msg, inMessage) {
		t.Errorf("message does not say %q:\n%s", inMessage, msg)
	}
}

func TestImmutableFieldsRejectUpdates(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name      string
		create    client.Object
		mutate    func(client.Object)
		field     string
		inMessage string
	}{
		{"etcd mode external to local", fullControlPlane("immutable-etcd-mode"), func(o client.Object) {
			cp := o.(*v1.ControlPlane)
			cp.Spec.Etcd = v1.EtcdSpec{Local: &v1.LocalEtcd{}}
		}, "spec.etcd", "etcd mode is immutable"},
		{"etcd key prefix", fullControlPlane("immutable-key-prefix"), func(o client.Object) {
			o.(*v1.ControlPlane).Spec.Etcd.External.KeyPrefix = "/marina/fra1/team-b"
		}, "spec.etcd.external.keyPrefix", "keyPrefix is immutable"},
		{"etcd from endpoints to a DataStore", fullControlPlane("immutable-to-datastore"), func(o client.Object) {
			o.(*v1.ControlPlane).Spec.Etcd.External = &v1.ExternalEtcd{DataStore: "shared"}
		}, "spec.etcd.external", "cannot move between a DataStore and endpoints"},
		{"DataStore key prefix", dataStore("immutable-ds-prefix"), func(o client.Object) {
			o.(*v1.DataStore).Spec.KeyPrefix = "/other"
		}, "spec.keyPrefix", "spec.keyPrefix is immutable"},
		{"local etcd member count", minimalControlPlane("immutable-etcd-replicas"), func(o client.Object) {
			o.(*v1.ControlPlane).Spec.Etcd.Local.Replicas = 3
		}, "spec.etcd.local.replicas", "cannot change once the control plane exists: new members would start a second, empty etcd cluster"},
		{"control plane data center", minimalControlPlane("immutable-data-center"), func(o client.Object) {
			o.(*v1.ControlPlane).Spec.DataCenter = "fra1"
		}, "spec.dataCenter", "dataCenter is immutable"},
		{"member credential source", fullMemberCluster("immutable-credentials"), func(o client.Object) {
			mc := o.(*v1.MemberCluster)
			mc.Spec.ClusterRef, mc.Spec.KubeconfigSecretRef = nil, &v1.SecretKeyReference{Name: "kc"}
		}, "spec", "credential source (kubeconfigSecretRef or clusterRef) is immutable"},
		{"peer data center", fullPeer("immutable-peer"), func(o client.Object) {
			o.(*v1.Peer).Spec.DataCenter = "lon3"
		}, "spec.dataCenter", "dataCenter is immutable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := tc.create
			if err := k8s.Create(ctx, obj); err != nil {
				t.Fatalf("create: %v", err)
			}
			t.Cleanup(func() { _ = k8s.Delete(ctx, obj) })
			tc.mutate(obj)
			assertInvalid(t, k8s.Update(ctx, obj), tc.field, tc.inMessage)
		})
	}

	// Mutable fields stay mutable: a version bump is how upgrades start.
	t.Run("version can change", func(t *testing.T) {
		cp := fullControlPlane("mutable-version")
		if err := k8s.Create(ctx, cp); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k8s.Delete(ctx, cp) })
		cp.Spec.Version = "v1.17.0"
		cp.Spec.Etcd.External.Endpoints = append(cp.Spec.Etcd.External.Endpoints, "https://etcd-3.fra1.example.com:2379")
		if err := k8s.Update(ctx, cp); err != nil {
			t.Fatalf("update version and endpoints: %v", err)
		}
	})
}

// TestOwnedFlagsAreRefused: extraArgs naming a flag Marina owns is refused
// on every component, with a message naming the field and the flag; a
// tunable flag Marina also sets is accepted.
func TestOwnedFlagsAreRefused(t *testing.T) {
	ctx := context.Background()
	for key, flags := range v1.OwnedFlags {
		for _, flag := range flags {
			t.Run(key+"/"+flag, func(t *testing.T) {
				cp := fullControlPlane(name(t))
				spec, ok := cp.Spec.Components.ByKey()[key]
				if !ok {
					t.Fatalf("no spec.components.%s", key)
				}
				spec.ExtraArgs = map[string]string{flag: "x", "v": "4"}
				err := k8s.Create(ctx, cp)
				if err == nil {
					_ = k8s.Delete(ctx, cp)
					t.Fatalf("created with extraArgs %s; want it refused", flag)
				}
				assertInvalid(t, err, "spec.components."+key+".extraArgs", "extraArgs may not set a flag Marina owns")
				if !strings.Contains(err.Error(), " "+flag+",") && !strings.HasSuffix(strings.TrimRight(err.Error(), `"]`), " "+flag) {
					t.Errorf("the message does not name %s: %v", flag, err)
				}
			})
		}
	}
	cp := fullControlPlane(name(t))
	cp.Spec.Components.APIServer.ExtraArgs = map[string]string{"enable-admission-plugins": "NamespaceLifecycle", "v": "4"}
	if err := k8s.Create(ctx, cp); err != nil {
		t.Errorf("a tunable flag Marina sets too was refused: %v", err)
	}
	_ = k8s.Delete(ctx, cp)
}
