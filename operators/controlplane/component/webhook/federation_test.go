package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	admissionregistrationv1ac "k8s.io/client-go/applyconfigurations/admissionregistration/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marina-platform/marina/internal/enginecrds"
	"github.com/marina-platform/marina/internal/localenv/pki"
	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/controlplane/component/crds"
	"github.com/marina-platform/marina/operators/controlplane/component/ownership"
	"github.com/marina-platform/marina/operators/controlplane/component/webhook"
	"github.com/marina-platform/marina/operators/controlplane/crdbundle"
	"github.com/marina-platform/marina/operators/controlplane/engine"
)

// A real kube-apiserver plays the federation API server, with the engine's
// CRDs; the webhook's URL leads nowhere, as when karmada-webhook is down.

const fieldManager = "marina-controlplane"

var (
	fed     client.Client
	release = engine.Releases()[0]
	labels  = map[string]string{"app.kubernetes.io/managed-by": "marina", "app.kubernetes.io/component": "webhook"}
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	env, err := testenv.Start()
	if err != nil {
		return 1, err
	}
	defer func() { _ = env.Stop() }()
	if err := apiextensionsv1.AddToScheme(env.Scheme); err != nil {
		return 1, err
	}
	fed = env.Client
	root, err := testenv.RepoRoot()
	if err != nil {
		return 1, err
	}
	rb, err := enginecrds.Find(root, release.Checked)
	if errors.Is(err, enginecrds.ErrNotFound) && !enginecrds.Required() {
		fmt.Println("SKIP: no engine CRD bundle on this machine:", err)
		return 0, nil
	}
	if err != nil {
		return 1, err
	}
	b, err := crdbundle.ReadFile(rb.Path)
	if err != nil {
		return 1, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	applied, err := crds.Deploy(ctx, fed, fieldManager, crds.Values{Bundle: b, StandInCluster: true})
	if err != nil {
		return 1, err
	}
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := crds.Pending(ctx, fed, applied, true)
		return len(p) == 0, err
	}); err != nil {
		return 1, err
	}
	return m.Run(), nil
}

func policy(name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON([]byte(`{"apiVersion":"policy.karmada.io/v1alpha1","kind":"PropagationPolicy",
		"metadata":{"name":"` + name + `","namespace":"default"},
		"spec":{"resourceSelectors":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web"}]}}`)); err != nil {
		panic(err)
	}
	return u
}

// TestSwitchingTheWebhookOffLetsPoliciesBeWritten: registered, the
// webhooks fail closed, so with karmada-webhook gone no policy is stored;
// Destroy removes them and the same write goes through.
func TestSwitchingTheWebhookOffLetsPoliciesBeWritten(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v := webhook.Values{Release: release, BaseURL: "https://127.0.0.1:1", CABundle: []byte(testCA), Labels: labels}
	if err := webhook.Deploy(ctx, fed, fieldManager, v); err != nil {
		t.Fatal(err)
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := fed.Get(ctx, client.ObjectKey{Name: engine.MutatingWebhookConfigurationName}, m); err != nil {
		t.Fatal(err)
	}
	vc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := fed.Get(ctx, client.ObjectKey{Name: engine.ValidatingWebhookConfigurationName}, vc); err != nil {
		t.Fatal(err)
	}
	if len(m.Webhooks)+len(vc.Webhooks) != 22 {
		t.Errorf("%d mutating and %d validating webhooks registered, want the engine's 22", len(m.Webhooks), len(vc.Webhooks))
	}

	err := fed.Create(ctx, policy("while-registered"))
	if err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
		t.Fatalf("a policy write with the webhook unreachable: err = %v, want the webhook's failure", err)
	}
	if err := webhook.Check(ctx, fed, "default"); err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
		t.Errorf("Check with the webhook unreachable: %v", err)
	}

	if err := webhook.Destroy(ctx, fed, fieldManager, labels); err != nil {
		t.Fatal(err)
	}
	if err := fed.Create(ctx, policy("after-destroy")); err != nil {
		t.Fatalf("a policy write after the webhook was switched off: %v", err)
	}
}

// TestOnlyMarinasConfigurationsAreRemoved: a configuration of the same name
// that someone else made stays; the unlabelled ones an older Marina applied
// go.
func TestOnlyMarinasConfigurationsAreRemoved(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	theirs := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: engine.ValidatingWebhookConfigurationName}}
	if err := fed.Create(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fed.Delete(context.Background(), theirs) })
	// As Marina applied it before: a few of the engine's webhooks, no labels.
	legacy := admissionregistrationv1ac.MutatingWebhookConfiguration("karmada-mutating").WithWebhooks(
		admissionregistrationv1ac.MutatingWebhook().WithName("work.karmada.io").
			WithClientConfig(admissionregistrationv1ac.WebhookClientConfig().WithURL("https://old-webhook.team-a.svc:443/mutate-work")).
			WithSideEffects(admissionregistrationv1.SideEffectClassNone).WithAdmissionReviewVersions("v1").
			WithObjectSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{"never": "matches"})))
	if err := fed.Apply(ctx, legacy, client.FieldOwner(fieldManager)); err != nil {
		t.Fatal(err)
	}
	// Deploying does not take theirs over: it says whose it is.
	v := webhook.Values{Release: release, BaseURL: "https://127.0.0.1:1", CABundle: []byte(testCA), Labels: labels}
	if err := webhook.Deploy(ctx, fed, fieldManager, v); !errors.Is(err, ownership.ErrNotOurs) || !strings.Contains(err.Error(), engine.ValidatingWebhookConfigurationName) {
		t.Errorf("Deploy next to someone else's %s: err = %v, want ErrNotOurs naming it", engine.ValidatingWebhookConfigurationName, err)
	}
	if err := webhook.Destroy(ctx, fed, fieldManager, labels); err != nil {
		t.Fatal(err)
	}
	if err := fed.Get(ctx, client.ObjectKeyFromObject(theirs), theirs); err != nil {
		t.Errorf("a configuration Marina did not make was removed: %v", err)
	}
	if len(theirs.Labels) != 0 || len(theirs.Webhooks) != 0 {
		t.Errorf("someone else's configuration was changed: %+v", theirs)
	}
	err := fed.Get(ctx, client.ObjectKey{Name: "karmada-mutating"}, &admissionregistrationv1.MutatingWebhookConfiguration{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the configuration an older Marina applied is still there: %v", err)
	}
}

// testCA is a throwaway CA certificate for caBundles.
var testCA = func() string {
	ca, err := pki.NewCA("test CA")
	if err != nil {
		panic(err)
	}
	return string(ca.CertPEM())
}()
