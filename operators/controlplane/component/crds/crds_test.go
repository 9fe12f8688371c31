package crds_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marina-platform/marina/internal/localenv/pki"
	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/controlplane/component/crds"
	"github.com/marina-platform/marina/operators/controlplane/crdbundle"
	"github.com/marina-platform/marina/operators/controlplane/engine"
)

// These tests play the federation API server with a real kube-apiserver
// and install the engine's own CRD bundles into it.

var fed client.Client

func TestMain(m *testing.M) {
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := apiextensionsv1.AddToScheme(env.Scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fed = env.Client
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func bundle(t *testing.T, version string) *crdbundle.Bundle {
	t.Helper()
	b, err := crdbundle.ReadFile(testenv.EngineBundle(t, version))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var labels = map[string]string{"app.kubernetes.io/managed-by": "marina", "app.kubernetes.io/component": "crds"}

func deployAndWait(ctx context.Context, t *testing.T, v crds.Values) {
	t.Helper()
	applied, err := crds.Deploy(ctx, fed, "marina-controlplane", v)
	if err != nil {
		t.Fatal(err)
	}
	var pending []string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		pending, err = crds.Pending(ctx, fed, applied, v.StandInCluster)
		return len(pending) == 0, err
	})
	if err != nil {
		t.Fatalf("CRDs not established: %v (%v)", pending, err)
	}
}

// TestReleasesInstallAndUpgrade installs each supported release's CRDs in
// turn, as an upgrade v1.16 → v1.17 → v1.18 does, with the conversion
// patches pointing at the webhook and the stand-in Cluster CRD, then
// switches the stand-in off as turning the aggregated API server on does.
func TestReleasesInstallAndUpgrade(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conv := &crdbundle.Conversion{Service: "fra1-webhook", Namespace: "team-a", CABundle: []byte(testCA)}

	for _, r := range engine.Releases() {
		deployAndWait(ctx, t, crds.Values{Bundle: bundle(t, r.Checked), Conversion: conv, StandInCluster: true, Labels: labels})

		rb := &apiextensionsv1.CustomResourceDefinition{}
		if err := fed.Get(ctx, client.ObjectKey{Name: "resourcebindings.work.karmada.io"}, rb); err != nil {
			t.Fatal(err)
		}
		c := rb.Spec.Conversion
		if c == nil || c.Strategy != apiextensionsv1.WebhookConverter || *c.Webhook.ClientConfig.URL != "https://fra1-webhook.team-a.svc:443/convert" {
			t.Fatalf("%s: ResourceBinding conversion %+v, want through the webhook", r.Checked, c)
		}
		if rb.Labels["app.kubernetes.io/managed-by"] != "marina" {
			t.Errorf("%s: CRD labels %v", r.Checked, rb.Labels)
		}
	}

	var err error
	// karmada-edit extends the built-in edit role (kube-controller-manager,
	// which does not run here, aggregates it) to the engine's policies.
	edit := &rbacv1.ClusterRole{}
	if err := fed.Get(ctx, client.ObjectKey{Name: "karmada-edit"}, edit); err != nil {
		t.Fatal(err)
	}
	if edit.Labels["rbac.authorization.k8s.io/aggregate-to-edit"] != "true" || !slices.ContainsFunc(edit.Rules, func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.APIGroups, "policy.karmada.io") && slices.Contains(r.Resources, "propagationpolicies") && slices.Contains(r.Verbs, "create")
	}) {
		t.Errorf("karmada-edit does not let editors create PropagationPolicies: %+v", edit)
	}

	// Bindings are stored as v1alpha2; reading one as v1alpha1 goes through
	// the conversion webhook (unreachable here), which proves it is asked.
	binding := obj(`{"apiVersion":"work.karmada.io/v1alpha2","kind":"ResourceBinding","metadata":{"name":"b","namespace":"default"},
		"spec":{"resource":{"apiVersion":"apps/v1","kind":"Deployment","namespace":"default","name":"web"}}}`)
	if err := fed.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	old := &unstructured.Unstructured{}
	old.SetAPIVersion("work.karmada.io/v1alpha1")
	old.SetKind("ResourceBinding")
	err = fed.Get(ctx, client.ObjectKey{Namespace: "default", Name: "b"}, old)
	if err == nil || !strings.Contains(err.Error(), "conversion webhook") {
		t.Errorf("reading a v1alpha1 ResourceBinding: err = %v, want a call to the conversion webhook", err)
	}

	// The stand-in serves Clusters as Marina's register operator writes them.
	cluster := obj(`{"apiVersion":"cluster.karmada.io/v1alpha1","kind":"Cluster","metadata":{"name":"member1"},
		"spec":{"syncMode":"Push","apiEndpoint":"https://10.210.1.10:6443","id":"4c1b9d6e-0c44-4f0e-8a8e-5d7f3b2a9c11",
		"secretRef":{"namespace":"karmada-cluster","name":"member1"},"impersonatorSecretRef":{"namespace":"karmada-cluster","name":"member1-impersonator"},
		"provider":"onprem","region":"eu-central","zones":["fra1-a"],"taints":[{"key":"marina.dev/maintenance","value":"true","effect":"NoSchedule"}]}}`)
	if err := fed.Create(ctx, cluster); err != nil {
		t.Fatalf("create a Cluster through the stand-in: %v", err)
	}

	// Switched off while it holds a Cluster, the stand-in stays and says
	// why: deleting it would delete the Cluster.
	last := engine.Releases()[len(engine.Releases())-1]
	_, err = crds.Deploy(ctx, fed, "marina-controlplane", crds.Values{Bundle: bundle(t, last.Checked), Labels: labels})
	if !errors.Is(err, crds.ErrStandInInTheWay) || !strings.Contains(err.Error(), "still holds 1 Clusters (member1)") {
		t.Fatalf("switching the stand-in off while it holds a Cluster: err = %v", err)
	}
	if err := fed.Get(ctx, client.ObjectKey{Name: "member1"}, cluster); err != nil {
		t.Fatalf("the Cluster is gone: %v", err)
	}

	// Once it is empty, the stand-in goes; the engine's CRDs stay, with the
	// webhook off their conversion patches are undone.
	if err := fed.Delete(ctx, cluster); err != nil {
		t.Fatal(err)
	}
	deployAndWait(ctx, t, crds.Values{Bundle: bundle(t, last.Checked), Labels: labels})
	if err := fed.Get(ctx, client.ObjectKey{Name: crds.StandInName}, &apiextensionsv1.CustomResourceDefinition{}); !apierrors.IsNotFound(err) {
		t.Errorf("the stand-in CRD is still there: %v", err)
	}
	rb := &apiextensionsv1.CustomResourceDefinition{}
	if err := fed.Get(ctx, client.ObjectKey{Name: "resourcebindings.work.karmada.io"}, rb); err != nil {
		t.Fatal(err)
	}
	if c := rb.Spec.Conversion; c != nil && c.Strategy == apiextensionsv1.WebhookConverter {
		t.Errorf("with the webhook off, ResourceBinding still converts through it: %+v", c)
	}
}

// TestAStandInSomeoneElseMadeStays: a Cluster CRD Marina did not make is
// left alone, and the error says what to do.
func TestAStandInSomeoneElseMadeStays(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	theirs, err := crds.StandIn()
	if err != nil {
		t.Fatal(err)
	}
	if err := fed.Create(ctx, theirs); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	_, err = crds.Deploy(ctx, fed, "marina-controlplane", crds.Values{Bundle: bundle(t, engine.Releases()[0].Checked), Labels: labels})
	if !errors.Is(err, crds.ErrStandInInTheWay) || !strings.Contains(err.Error(), "was not made by Marina") {
		t.Fatalf("err = %v, want one saying the CRD is someone else's", err)
	}
	got := &apiextensionsv1.CustomResourceDefinition{}
	if err := fed.Get(ctx, client.ObjectKey{Name: crds.StandInName}, got); err != nil || !got.DeletionTimestamp.IsZero() {
		t.Fatalf("a Cluster CRD Marina did not make was removed: %v", err)
	}
	if err := fed.Delete(ctx, got); err != nil {
		t.Fatal(err)
	}
}

func TestABundleWithAClusterCRDIsRefused(t *testing.T) {
	b := bundle(t, engine.Releases()[0].Checked)
	standIn, err := crds.StandIn()
	if err != nil {
		t.Fatal(err)
	}
	b.CRDs = append(b.CRDs, standIn)
	_, err = crds.Objects(crds.Values{Bundle: b})
	if !errors.Is(err, crdbundle.ErrContent) || !strings.Contains(err.Error(), crds.StandInName) {
		t.Fatalf("err = %v, want ErrContent naming %s", err, crds.StandInName)
	}
}

func obj(j string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON([]byte(j)); err != nil {
		panic(err)
	}
	return u
}

// testCA is a throwaway CA certificate for caBundles.
var testCA = func() string {
	ca, err := pki.NewCA("test CA")
	if err != nil {
		panic(err)
	}
	return string(ca.CertPEM())
}()
