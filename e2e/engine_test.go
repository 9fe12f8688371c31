package e2e

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/localenv"
	"github.com/marina-platform/marina/operators/controlplane/engine"
)

// engineComponents are the engine images a ControlPlane with every
// component on runs.
var engineComponents = []string{"karmada-aggregated-apiserver", "karmada-controller-manager", "karmada-scheduler", "karmada-webhook", "karmada-metrics-adapter", "karmada-search"}

// TestRealEngine runs a ControlPlane with every component of the real
// engine on, for each supported release whose images the folder named by
// MARINA_ENGINE_IMAGES holds (and `make up` imported): the environment
// cannot build them itself. Without it the test is skipped, and `make
// test` says so.
func TestRealEngine(t *testing.T) {
	for _, r := range engineReleases(t, engineComponents) {
		t.Run(r.Checked, func(t *testing.T) { testRealEngine(t, r) })
	}
}

// engineReleases are the supported releases for which the folder named by
// MARINA_ENGINE_IMAGES holds an image of every one of components. Without
// the folder the test is skipped, visibly; a folder with none of them is
// a failure.
func engineReleases(t *testing.T, components []string) []engine.Release {
	t.Helper()
	dir := os.Getenv(localenv.EngineImagesEnv)
	if dir == "" {
		t.Skipf("SKIP: %s is not set: no engine images to run the real engine with", localenv.EngineImagesEnv)
	}
	tags, err := imageTags(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []engine.Release
	for _, r := range engine.Releases() {
		missing := ""
		for _, c := range components {
			if !tags["docker.io/karmada/"+c+":"+r.Checked] {
				missing = c
			}
		}
		if missing != "" {
			t.Logf("SKIP %s: %s has no image docker.io/karmada/%s:%s", r.Checked, dir, missing, r.Checked)
			continue
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		t.Fatalf("%s=%s holds the images of no supported release (%s)", localenv.EngineImagesEnv, dir, engine.Minors())
	}
	return out
}

func testRealEngine(t *testing.T, r engine.Release) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dc1 := env.DataCenters()[0]
	mgmt := mgmtClient(t, dc1.Kubeconfig())
	ns := tenantNamespace(ctx, t, mgmt, "e2e-engine")

	cp, err := env.ControlPlane(dc1, ns, "engine")
	if err != nil {
		t.Fatal(err)
	}
	cp.Spec.Version = r.Checked
	if cp.Spec.CRDs.HTTP, err = env.KarmadaCRDs(r.Checked); err != nil {
		t.Fatal(err)
	}
	cp.Spec.DeletionPolicy = marinav1alpha1.DeletionPolicyDelete
	small := corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")}}
	c := &cp.Spec.Components
	for _, o := range []*marinav1alpha1.OptionalComponentSpec{&c.AggregatedAPIServer, &c.ControllerManager, &c.Scheduler.OptionalComponentSpec, &c.Webhook, &c.MetricsAdapter, &c.Search} {
		o.Enabled = ptr.To(true)
		o.Resources = small
	}
	start := time.Now()
	mustCreate(ctx, t, mgmt, cp)
	waitReady(ctx, t, mgmt, cp, 4*time.Minute)
	t.Logf("%s: every component Ready %s after create", r.Checked, time.Since(start).Round(time.Second))

	envCA, err := env.CA()
	if err != nil {
		t.Fatal(err)
	}
	fed := federationClient(ctx, t, mgmt, dc1, cp, envCA.Cert)
	mustCreate(ctx, t, fed, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})

	t.Run("the aggregated API server serves Clusters", func(t *testing.T) {
		api := &unstructured.Unstructured{}
		api.SetAPIVersion("apiregistration.k8s.io/v1")
		api.SetKind("APIService")
		if err := fed.Get(ctx, client.ObjectKey{Name: "v1alpha1.cluster.karmada.io"}, api); err != nil {
			t.Fatal(err)
		}
		conds, _, _ := unstructured.NestedSlice(api.Object, "status", "conditions")
		if !strings.Contains(fmt.Sprint(conds), "type:Available") || !strings.Contains(fmt.Sprint(conds), "status:True") {
			t.Errorf("APIService not Available: %v", conds)
		}
		clusters := &unstructured.UnstructuredList{}
		clusters.SetAPIVersion("cluster.karmada.io/v1alpha1")
		clusters.SetKind("ClusterList")
		if err := fed.List(ctx, clusters); err != nil {
			t.Errorf("list Clusters through the aggregated API server: %v", err)
		}
	})

	t.Run("the metrics adapter and search are registered and serve", func(t *testing.T) {
		for _, name := range []string{"v1beta1.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io", "v1beta1.custom.metrics.k8s.io", "v1alpha1.search.karmada.io"} {
			api := &unstructured.Unstructured{}
			api.SetAPIVersion("apiregistration.k8s.io/v1")
			api.SetKind("APIService")
			if err := fed.Get(ctx, client.ObjectKey{Name: name}, api); err != nil {
				t.Fatal(err)
			}
			conds, _, _ := unstructured.NestedSlice(api.Object, "status", "conditions")
			if !strings.Contains(fmt.Sprint(conds), "status:True") {
				t.Errorf("APIService %s not Available: %v", name, conds)
			}
		}
		// Served by the adapter and by search themselves, through the aggregator.
		for _, l := range []struct{ apiVersion, kind string }{{"metrics.k8s.io/v1beta1", "NodeMetricsList"}, {"search.karmada.io/v1alpha1", "ResourceRegistryList"}} {
			list := &unstructured.UnstructuredList{}
			list.SetAPIVersion(l.apiVersion)
			list.SetKind(l.kind)
			if err := fed.List(ctx, list); err != nil {
				t.Errorf("list %s %s: %v", l.apiVersion, l.kind, err)
			}
		}
	})

	t.Run("the engine's webhooks are registered and answer", func(t *testing.T) {
		m := &admissionregistrationv1.MutatingWebhookConfiguration{}
		v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := fed.Get(ctx, client.ObjectKey{Name: engine.MutatingWebhookConfigurationName}, m); err != nil {
			t.Fatal(err)
		}
		if err := fed.Get(ctx, client.ObjectKey{Name: engine.ValidatingWebhookConfigurationName}, v); err != nil {
			t.Fatal(err)
		}
		if len(m.Webhooks) != 8 || len(v.Webhooks) != 14 {
			t.Errorf("%d mutating and %d validating webhooks, want 8 and 14", len(m.Webhooks), len(v.Webhooks))
		}
		// The mutating webhook gives every policy its permanent ID.
		pp := policyObject(ns, "web")
		if err := fed.Create(ctx, pp); err != nil {
			t.Fatal(err)
		}
		if pp.GetLabels()["propagationpolicy.karmada.io/permanent-id"] == "" {
			t.Errorf("the PropagationPolicy has no permanent ID: labels %v", pp.GetLabels())
		}
		// The validating webhook protects labelled objects from deletion.
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "protected",
			Labels: map[string]string{"resourcetemplate.karmada.io/deletion-protected": "Always"}}}
		mustCreate(ctx, t, fed, cm)
		if err := fed.Delete(ctx, cm); err == nil || !strings.Contains(err.Error(), "resourcedeletionprotection") {
			t.Errorf("deleting a protected ConfigMap: err = %v, want the webhook's refusal", err)
		}
	})

	t.Run("switching the webhook off removes its configurations", func(t *testing.T) {
		patchCP(ctx, t, mgmt, cp, func(cp *marinav1alpha1.ControlPlane) { cp.Spec.Components.Webhook.Enabled = ptr.To(false) })
		waitReady(ctx, t, mgmt, cp, 2*time.Minute)
		err := fed.Get(ctx, client.ObjectKey{Name: engine.ValidatingWebhookConfigurationName}, &admissionregistrationv1.ValidatingWebhookConfiguration{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("validating-config after the webhook was switched off: %v", err)
		}
		if err := fed.Create(ctx, policyObject(ns, "without-webhook")); err != nil {
			t.Errorf("a policy write without the webhook: %v", err)
		}
	})

	if err := mgmt.Delete(ctx, cp); err != nil {
		t.Fatal(err)
	}
	for mgmt.Get(ctx, client.ObjectKeyFromObject(cp), &marinav1alpha1.ControlPlane{}) == nil {
		if ctx.Err() != nil {
			t.Fatalf("ControlPlane %s was not deleted", cp.Name)
		}
		time.Sleep(time.Second)
	}
}

func policyObject(ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("policy.karmada.io/v1alpha1")
	u.SetKind("PropagationPolicy")
	u.SetNamespace(ns)
	u.SetName(name)
	_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": name}}, "spec", "resourceSelectors")
	return u
}

// imageTags reads the references the image tarballs in dir carry.
func imageTags(dir string) (map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return nil, err
	}
	tags := map[string]bool{}
	for _, f := range files {
		refs, err := tarballTags(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, r := range refs {
			tags[r] = true
		}
	}
	return tags, nil
}

func tarballTags(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no manifest.json")
		}
		if err != nil {
			return nil, err
		}
		if h.Name != "manifest.json" {
			continue
		}
		var manifest []struct{ RepoTags []string }
		if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
			return nil, err
		}
		var tags []string
		for _, m := range manifest {
			tags = append(tags, m.RepoTags...)
		}
		return tags, nil
	}
}

// tenantNamespace makes a namespace of the management cluster, removed
// when the test ends, with the shared external etcd's client Secret that
// the environment's ControlPlanes name.
func tenantNamespace(ctx context.Context, t *testing.T, mgmt client.Client, prefix string) string {
	t.Helper()
	ns := fmt.Sprintf("%s-%d", prefix, time.Now().Unix()%100000)
	mustCreate(ctx, t, mgmt, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	t.Cleanup(func() {
		_ = mgmt.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	})
	return ns
}
