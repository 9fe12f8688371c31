package aggregatedapiserver_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/controlplane/component/aggregatedapiserver"
	"github.com/marina-platform/marina/operators/controlplane/component/apiservice"
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

// TestAnAPIServiceThatIsNotAvailableIsReported registers the cluster API
// with a real kube-apiserver while nothing serves it: Problem reports it,
// and Destroy takes the registration back.
func TestAnAPIServiceThatIsNotAvailableIsReported(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := &corev1.Namespace{}
	ns.Name = "karmada-system"
	if err := fed.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app.kubernetes.io/managed-by": "marina", "app.kubernetes.io/component": "aggregated-apiserver"}
	v := aggregatedapiserver.Values{
		Values: apiservice.Values{
			Namespace: "karmada-system", ExternalName: "nowhere.team-a.svc.cluster.local", CABundle: []byte("ca"), Labels: labels,
		},
		ProxyAdmins: []string{"marina:admin"},
	}
	if err := aggregatedapiserver.Deploy(ctx, fed, "marina-controlplane", v); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{}
	if err := fed.Get(ctx, client.ObjectKey{Namespace: "karmada-system", Name: aggregatedapiserver.ServiceName}, svc); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ExternalName != v.ExternalName {
		t.Errorf("Service points at %q", svc.Spec.ExternalName)
	}
	// The administrator may use the cluster proxy.
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               "marina:admin",
		ResourceAttributes: &authorizationv1.ResourceAttributes{Group: "cluster.karmada.io", Resource: "clusters", Subresource: "proxy", Verb: "get", Name: "member1"},
	}}
	if err := fed.Create(ctx, review); err != nil {
		t.Fatal(err)
	}
	if !review.Status.Allowed {
		t.Errorf("marina:admin may not use clusters/proxy: %+v", review.Status)
	}

	// Nothing serves the group: the APIService is not Available, whether
	// the aggregator has said why yet or not.
	problem, err := aggregatedapiserver.Problem(ctx, fed)
	if err != nil || !strings.Contains(problem, aggregatedapiserver.APIServiceName) {
		t.Fatalf("Problem = %q, %v; want the APIService reported as not Available", problem, err)
	}
	t.Logf("reported: %s", problem)

	if err := aggregatedapiserver.Destroy(ctx, fed, "marina-controlplane", "karmada-system", labels); err != nil {
		t.Fatal(err)
	}
	api := &unstructured.Unstructured{}
	api.SetAPIVersion("apiregistration.k8s.io/v1")
	api.SetKind("APIService")
	if err := fed.Get(ctx, client.ObjectKey{Name: aggregatedapiserver.APIServiceName}, api); !apierrors.IsNotFound(err) {
		t.Errorf("the APIService is still there: %v", err)
	}
	if err := fed.Get(ctx, client.ObjectKeyFromObject(svc), &corev1.Service{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Service is still there: %v", err)
	}
	if err := fed.Get(ctx, client.ObjectKey{Name: aggregatedapiserver.ProxyAdminBinding}, &rbacv1.ClusterRoleBinding{}); !apierrors.IsNotFound(err) {
		t.Errorf("the proxy admin binding is still there: %v", err)
	}
}
