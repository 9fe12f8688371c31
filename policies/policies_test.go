package policies

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marina-platform/marina/internal/manifest"
	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/controlplane/component/crds"
	"github.com/marina-platform/marina/operators/controlplane/crdbundle"
	"github.com/marina-platform/marina/operators/controlplane/engine"
)

// The bundles a PolicySet may name. Adding one is a change of what Marina
// ships: add it here and to README.md.
var want = []string{"baseline", "datacenter-overrides", "tenant-example"}

func TestBundles(t *testing.T) {
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	// spec.sources[].bundle's pattern in the API.
	valid := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	for _, name := range Names() {
		if !valid.MatchString(name) || len(name) > 63 {
			t.Errorf("bundle %q cannot be named by a PolicySet", name)
		}
		objs, err := Objects(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) == 0 {
			t.Errorf("bundle %s is empty", name)
		}
		seen := map[string]bool{}
		for _, o := range objs {
			key := o.GroupVersionKind().String() + " " + o.GetNamespace() + "/" + o.GetName()
			if seen[key] {
				t.Errorf("bundle %s defines %s twice", name, key)
			}
			seen[key] = true
		}
	}
	for _, bad := range []string{"nope", "*", "baseline/propagation.yaml", ""} {
		if _, err := Objects(bad); err == nil || !strings.Contains(err.Error(), "the bundles are baseline, datacenter-overrides, tenant-example") {
			t.Errorf("Objects(%q) = %v, want an error listing the bundles", bad, err)
		}
	}
}

// TestBundlesAgainstEngineCRDs creates every bundle's objects in a real API
// server holding each supported engine release's own CRDs (Karmada's
// crds.tar.gz), in turn as an upgrade installs them. Field validation is
// Strict, so a misspelt or unknown field fails as a wrong type or a missing
// required field does. Namespaces are created; everything else is created
// with dry run, so each release validates the same objects afresh.
func TestBundlesAgainstEngineCRDs(t *testing.T) {
	// An API server playing a control plane: no Marina CRDs.
	env, err := testenv.StartWith(testenv.Options{WithoutMarinaCRDs: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop test API server: %v", err)
		}
	})
	if err := apiextensionsv1.AddToScheme(env.Scheme); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := env.Client

	for _, r := range engine.Releases() {
		b, err := crdbundle.ReadFile(testenv.EngineBundle(t, r.Checked))
		if err != nil {
			t.Fatal(err)
		}
		applied, err := crds.Deploy(ctx, c, "marina-test", crds.Values{Bundle: b, Labels: map[string]string{"app.kubernetes.io/managed-by": "marina-test"}})
		if err != nil {
			t.Fatal(err)
		}
		var pending []string
		if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			pending, err = crds.Pending(ctx, c, applied, false)
			return len(pending) == 0, err
		}); err != nil {
			t.Fatalf("%s: CRDs not established: %v (%v)", r.Checked, pending, err)
		}

		for _, name := range Names() {
			objs, err := Objects(name)
			if err != nil {
				t.Fatal(err)
			}
			manifest.Order(objs)
			valid := 0
			for _, o := range objs {
				if err := create(ctx, c, o); err != nil {
					t.Errorf("engine %s, bundle %s: %s %s: %v", r.Checked, name, o.GetKind(), client.ObjectKeyFromObject(o), err)
					continue
				}
				valid++
			}
			t.Logf("engine %s: bundle %s, %d of %d objects valid", r.Checked, name, valid, len(objs))
		}

		// The check can fail: a misspelt field is refused.
		typo, err := manifest.Parse([]byte(`
apiVersion: policy.karmada.io/v1alpha1
kind: ClusterPropagationPolicy
metadata: {name: typo}
spec:
  resourceSelectors: [{apiVersion: v1, kind: Namespace}]
  placement: {clusterAfinity: {}}
`))
		if err != nil {
			t.Fatal(err)
		}
		if err := create(ctx, c, typo[0]); err == nil || !strings.Contains(err.Error(), "clusterAfinity") {
			t.Errorf("engine %s: a ClusterPropagationPolicy with spec.placement.clusterAfinity: %v, want it refused naming the field", r.Checked, err)
		}
	}
}

// create makes a Namespace, or dry-runs any other object, with strict field
// validation.
func create(ctx context.Context, c client.Client, o *unstructured.Unstructured) error {
	o = o.DeepCopy()
	opts := []client.CreateOption{client.FieldValidation("Strict")}
	if o.GetKind() != "Namespace" {
		opts = append(opts, client.DryRunAll)
	}
	err := c.Create(ctx, o, opts...)
	if o.GetKind() == "Namespace" && err != nil && strings.Contains(err.Error(), "already exists") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	return nil
}
