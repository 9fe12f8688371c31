package apiservice_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/controlplane/component/apiservice"
	"github.com/marina-platform/marina/operators/controlplane/component/metricsadapter"
	"github.com/marina-platform/marina/operators/controlplane/component/search"
)

var fed client.Client

func TestMain(m *testing.M) {
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fed = env.Client
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// TestExtensionAPIServersAreRegisteredAndRemoved registers the metrics
// adapter's and search's APIs with a real kube-apiserver while nothing
// serves them: each APIService names the ExternalName Service and carries
// the CA, Problem names every one that is not Available, and Destroy
// takes exactly that server's registration back.
func TestExtensionAPIServersAreRegisteredAndRemoved(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := &corev1.Namespace{}
	ns.Name = "karmada-system"
	if err := fed.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	servers := map[string]apiservice.Server{"metrics-adapter": metricsadapter.Server, "search": search.Server}
	for part, srv := range servers {
		v := apiservice.Values{
			Namespace: "karmada-system", ExternalName: "team-a-" + part + ".team-a.svc.cluster.local", CABundle: []byte("ca-" + part),
			Labels: map[string]string{"app.kubernetes.io/managed-by": "marina", "app.kubernetes.io/component": part},
		}
		if err := srv.Deploy(ctx, fed, "marina-controlplane", v); err != nil {
			t.Fatalf("%s: %v", part, err)
		}
		svc := &corev1.Service{}
		if err := fed.Get(ctx, client.ObjectKey{Namespace: "karmada-system", Name: srv.Service}, svc); err != nil {
			t.Fatal(err)
		}
		if svc.Spec.Type != corev1.ServiceTypeExternalName || svc.Spec.ExternalName != v.ExternalName {
			t.Errorf("%s: Service is %s to %q", part, svc.Spec.Type, svc.Spec.ExternalName)
		}
		for _, g := range srv.APIs {
			api := apiService(ctx, t, g.Name())
			if api == nil {
				t.Fatalf("%s: APIService %s missing", part, g.Name())
			}
			name, _, _ := unstructured.NestedString(api.Object, "spec", "service", "name")
			ca, _, _ := unstructured.NestedString(api.Object, "spec", "caBundle")
			if name != srv.Service || ca == "" {
				t.Errorf("%s: APIService %s names Service %q, caBundle %q", part, g.Name(), name, ca)
			}
		}
		// Nothing serves them: not Available, whether the aggregator has
		// said why yet or not.
		problem, err := srv.Problem(ctx, fed)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s reported: %s", part, problem)
		for _, g := range srv.APIs {
			if !strings.Contains(problem, "APIService "+g.Name()+" ") {
				t.Errorf("%s: problem does not name %s: %s", part, g.Name(), problem)
			}
		}
	}

	if err := metricsadapter.Server.Destroy(ctx, fed, "marina-controlplane", "karmada-system", map[string]string{"app.kubernetes.io/managed-by": "marina"}); err != nil {
		t.Fatal(err)
	}
	for _, g := range metricsadapter.Server.APIs {
		if apiService(ctx, t, g.Name()) != nil {
			t.Errorf("APIService %s left after Destroy", g.Name())
		}
	}
	for _, g := range search.Server.APIs {
		if apiService(ctx, t, g.Name()) == nil {
			t.Errorf("search's APIService %s went with the metrics adapter's", g.Name())
		}
	}
}

func apiService(ctx context.Context, t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	api := &unstructured.Unstructured{}
	api.SetAPIVersion("apiregistration.k8s.io/v1")
	api.SetKind("APIService")
	err := fed.Get(ctx, client.ObjectKey{Name: name}, api)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return api
}
