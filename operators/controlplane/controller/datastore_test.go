package controller_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/controlplane/controller"
)

// createDataStore registers the test's etcd (authentication on) as a
// DataStore, its root certificate and client CA in a namespace of the
// platform team's.
func createDataStore(t *testing.T, name string) *marinav1alpha1.DataStore {
	t.Helper()
	platform := namespace(t)
	createSecret(t, platform, "root", etcdTLS)
	caCert, caKey := etcd.ClientCAFiles()
	ca := map[string][]byte{}
	for k, f := range map[string]string{"tls.crt": caCert, "tls.key": caKey} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ca[k] = b
	}
	createSecret(t, platform, "client-ca", ca)
	ds := create(t, &marinav1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: marinav1alpha1.DataStoreSpec{
			Endpoints:         etcd.Endpoints(),
			RootSecretRef:     marinav1alpha1.NamespacedSecretReference{Namespace: platform, Name: "root"},
			ClientCASecretRef: marinav1alpha1.NamespacedSecretReference{Namespace: platform, Name: "client-ca"},
			KeyPrefix:         "/marina/" + name,
		},
	})
	return ds
}

// tenantClient is an etcd client with a control plane's own certificate,
// the one its API servers get.
func tenantClient(t *testing.T, cp *marinav1alpha1.ControlPlane) *clientv3.Client {
	t.Helper()
	sec := &corev1.Secret{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: cp.Namespace, Name: cp.Name + "-etcd-client"}, sec); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(sec.Data["tls.crt"], sec.Data["tls.key"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(sec.Data["ca.crt"])
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: etcd.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		TLS: &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// TestDataStoreIsolatesControlPlanes is the review's reproduction on a
// DataStore: one tenant's control plane cannot read, write or purge
// another's keys, whatever its spec says, because etcd itself refuses.
func TestDataStoreIsolatesControlPlanes(t *testing.T) {
	ctx := context.Background()
	ds := createDataStore(t, "shared-"+strings.ToLower(time.Now().Format("150405")))
	eventually(t, "DataStore Ready with its finalizer", func() bool {
		got := &marinav1alpha1.DataStore{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(ds), got); err != nil {
			return false
		}
		c := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionTrue && slices.Contains(got.Finalizers, controller.DataStoreFinalizer)
	})

	// first in its namespace; evil and third in another tenant's.
	nsA, nsB := namespace(t), namespace(t)
	var cps []*marinav1alpha1.ControlPlane
	for _, x := range []struct{ ns, name string }{{nsA, "first"}, {nsB, "evil"}, {nsB, "third"}} {
		createCA(t, x.ns, x.name+"-ca")
		cp := testenv.ControlPlane(x.ns, x.name, "dc1")
		cp.Spec.Etcd.External = &marinav1alpha1.ExternalEtcd{DataStore: ds.Name}
		cp.Spec.DeletionPolicy = marinav1alpha1.DeletionPolicyDelete
		cps = append(cps, create(t, cp))
	}
	prefixes := map[string]string{}
	for _, cp := range cps {
		got := waitCondition(t, cp, marinav1alpha1.ConditionEtcdReady, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded)
		st := got.Status.Etcd
		if st == nil || st.KeyPrefix != "/marina/"+ds.Name+"/"+string(cp.UID) || st.User != "marina-"+string(cp.UID) {
			t.Fatalf("%s: status.etcd = %+v", cp.Name, st)
		}
		prefixes[cp.Name] = st.KeyPrefix
		d := &appsv1.Deployment{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: cp.Name + "-apiserver"}, d); err != nil {
			t.Fatal(err)
		}
		args := d.Spec.Template.Spec.Containers[0].Args
		for _, want := range []string{"--etcd-prefix=" + st.KeyPrefix, "--etcd-compaction-interval=0", "--etcd-servers=" + strings.Join(etcd.Endpoints(), ",")} {
			if !slices.Contains(args, want) {
				t.Errorf("%s: API server args lack %s: %v", cp.Name, want, args)
			}
		}
	}
	for a, pa := range prefixes {
		for b, pb := range prefixes {
			if a != b && (pa == pb || strings.HasPrefix(pa+"/", pb+"/")) {
				t.Errorf("prefixes of %s (%s) and %s (%s) are equal or nested", a, pa, b, pb)
			}
		}
	}

	// Each writes its own keys with its own certificate; etcd refuses it
	// every other control plane's keys and the keyspace above them.
	const keysEach = 3
	for _, cp := range cps {
		cli := tenantClient(t, cp)
		for i := range keysEach {
			if _, err := cli.Put(ctx, prefixes[cp.Name]+"/registry/k"+string(rune('a'+i)), "v"); err != nil {
				t.Fatalf("%s cannot write its own keys: %v", cp.Name, err)
			}
		}
	}
	evil := tenantClient(t, cps[1])
	for _, try := range []struct {
		what string
		op   func() error
	}{
		{"read first's keys", func() error {
			_, err := evil.Get(ctx, prefixes["first"]+"/", clientv3.WithPrefix())
			return err
		}},
		{"write under first's prefix", func() error { _, err := evil.Put(ctx, prefixes["first"]+"/registry/x", "v"); return err }},
		{"delete first's keys", func() error {
			_, err := evil.Delete(ctx, prefixes["first"]+"/", clientv3.WithPrefix())
			return err
		}},
		{"delete the DataStore's whole prefix", func() error {
			_, err := evil.Delete(ctx, "/marina/"+ds.Name+"/", clientv3.WithPrefix())
			return err
		}},
	} {
		if err := try.op(); !errors.Is(err, rpctypes.ErrPermissionDenied) {
			t.Errorf("evil's certificate may %s: %v, want etcd's permission denied", try.what, err)
		}
	}

	// The reproduction by hand: a ControlPlane in evil's namespace with
	// the deprecated form, evil's own certificate and first's prefix (the
	// only credentials its tenant holds), deletionPolicy Delete. Deleting
	// it purges nothing: etcd refuses the purge, and the deletion waits
	// with a condition that says so.
	sec := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: nsB, Name: "evil-etcd-client"}, sec); err != nil {
		t.Fatal(err)
	}
	createSecret(t, nsB, "stolen", sec.Data)
	createCA(t, nsB, "wiper-ca")
	wiper := testenv.ControlPlane(nsB, "wiper", "dc1")
	wiper.Spec.Etcd.External = &marinav1alpha1.ExternalEtcd{
		Endpoints: etcd.Endpoints(), TLSSecretRef: &marinav1alpha1.SecretReference{Name: "stolen"}, KeyPrefix: prefixes["first"],
	}
	wiper.Spec.DeletionPolicy = marinav1alpha1.DeletionPolicyDelete
	create(t, wiper)
	waitCondition(t, wiper, marinav1alpha1.ConditionEtcdReady, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded)
	if err := k8s.Delete(ctx, wiper); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, wiper, marinav1alpha1.ConditionReady, metav1.ConditionFalse, marinav1alpha1.ReasonEtcdUnreachable)
	assertMessage(t, got, marinav1alpha1.ConditionReady, "permission denied")
	root := tenantlessRoot(t)
	if n := count(t, root, prefixes["first"]); n != keysEach {
		t.Errorf("first has %d keys after the wiper's delete, want %d", n, keysEach)
	}
	patch(t, wiper, func(cp *marinav1alpha1.ControlPlane) { cp.Spec.DeletionPolicy = marinav1alpha1.DeletionPolicyRetain })
	waitGone(t, wiper, 60*time.Second)

	// A DataStore in use stays, and says why.
	if err := k8s.Delete(ctx, ds); err != nil {
		t.Fatal(err)
	}
	eventually(t, "DataStore held: InUse", func() bool {
		got := &marinav1alpha1.DataStore{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(ds), got); err != nil {
			return false
		}
		c := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionReady)
		return c != nil && c.Reason == marinav1alpha1.ReasonInUse && got.Status.ControlPlanes == 3
	})

	// Deleting each in turn removes its keys, user and role, and leaves
	// the others' keys counted and intact.
	for i, cp := range cps {
		if err := k8s.Delete(ctx, cp); err != nil {
			t.Fatal(err)
		}
		waitGone(t, cp, 90*time.Second)
		if n := count(t, root, prefixes[cp.Name]); n != 0 {
			t.Errorf("%d keys left under %s's prefix", n, cp.Name)
		}
		if _, err := root.UserGet(ctx, "marina-"+string(cp.UID)); !errors.Is(err, rpctypes.ErrUserNotFound) {
			t.Errorf("%s's etcd user after its deletion: %v, want not found", cp.Name, err)
		}
		if _, err := root.RoleGet(ctx, "marina-"+string(cp.UID)); !errors.Is(err, rpctypes.ErrRoleNotFound) {
			t.Errorf("%s's etcd role after its deletion: %v, want not found", cp.Name, err)
		}
		for _, other := range cps[i+1:] {
			if n := count(t, root, prefixes[other.Name]); n != keysEach {
				t.Errorf("after %s's deletion %s has %d keys, want %d", cp.Name, other.Name, n, keysEach)
			}
		}
	}
	eventually(t, "DataStore gone once no ControlPlane uses it", func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(ds), &marinav1alpha1.DataStore{}))
	})
}

// TestDataStoreProblemsAreReported: a missing DataStore, and a DataStore
// whose Secrets are missing, block the control plane with a reason.
func TestDataStoreProblemsAreReported(t *testing.T) {
	ns := namespace(t)
	createCA(t, ns, "lost-ca")
	cp := testenv.ControlPlane(ns, "lost", "dc1")
	cp.Spec.Etcd.External = &marinav1alpha1.ExternalEtcd{DataStore: "no-such-" + ns}
	create(t, cp)
	got := waitCondition(t, cp, marinav1alpha1.ConditionEtcdReady, metav1.ConditionFalse, marinav1alpha1.ReasonDataStoreNotFound)
	assertMessage(t, got, marinav1alpha1.ConditionEtcdReady, "spec.etcd.external.dataStore")
	waitEvent(t, cp, corev1.EventTypeWarning, marinav1alpha1.ReasonDataStoreNotFound)

	ds := create(t, &marinav1alpha1.DataStore{
		ObjectMeta: metav1.ObjectMeta{Name: "no-such-" + ns},
		Spec: marinav1alpha1.DataStoreSpec{
			Endpoints:         etcd.Endpoints(),
			RootSecretRef:     marinav1alpha1.NamespacedSecretReference{Namespace: ns, Name: "missing-root"},
			ClientCASecretRef: marinav1alpha1.NamespacedSecretReference{Namespace: ns, Name: "missing-ca"},
		},
	})
	got = waitCondition(t, cp, marinav1alpha1.ConditionEtcdReady, metav1.ConditionFalse, marinav1alpha1.ReasonDataStoreNotReady)
	assertMessage(t, got, marinav1alpha1.ConditionEtcdReady, "missing-root")
	eventually(t, "DataStore not Ready: SecretNotFound", func() bool {
		got := &marinav1alpha1.DataStore{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(ds), got); err != nil {
			return false
		}
		c := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == marinav1alpha1.ReasonSecretNotFound
	})
	if err := k8s.Delete(context.Background(), cp); err != nil {
		t.Fatal(err)
	}
	waitGone(t, cp, 60*time.Second)
	if err := k8s.Delete(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
}

// tenantlessRoot is a client with the etcd's root certificate.
func tenantlessRoot(t *testing.T) *clientv3.Client {
	t.Helper()
	cli, err := etcd.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func count(t *testing.T, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := cli.Get(context.Background(), prefix+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}
