// Package federation starts API servers that play a control plane for the
// operators' tests: a real kube-apiserver serving the engine's real CRDs,
// as the controlplane operator's CRD stage installs them. It is apart from
// package testenv because the CRD stage's own tests use testenv.
package federation

import (
	"context"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/controlplane/component/crds"
	"github.com/marina-platform/marina/operators/controlplane/crdbundle"
	"github.com/marina-platform/marina/operators/controlplane/engine"
)

// Start runs an API server with the CRDs of the newest supported engine
// release, established, labelled with labels; it stops with the test. The
// test is skipped where the release's bundle is not on the machine (and
// fails in CI), as testenv.EngineBundle says.
func Start(ctx context.Context, t testing.TB, labels map[string]string) *testenv.Env {
	t.Helper()
	newest := engine.Releases()[len(engine.Releases())-1].Checked
	bundle, err := crdbundle.ReadFile(testenv.EngineBundle(t, newest))
	if err != nil {
		t.Fatal(err)
	}
	fed, err := testenv.StartWith(testenv.Options{WithoutMarinaCRDs: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fed.Stop() })
	if err := apiextensionsv1.AddToScheme(fed.Scheme); err != nil {
		t.Fatal(err)
	}
	applied, err := crds.Deploy(ctx, fed.Client, "test", crds.Values{Bundle: bundle, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		pending, err := crds.Pending(ctx, fed.Client, applied, false)
		return len(pending) == 0, err
	}); err != nil {
		t.Fatalf("the engine's %s CRDs: %v", newest, err)
	}
	return fed
}
