package secrets

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/marina-platform/marina/internal/testenv"
)

// counting counts the reads that reach the API server.
type counting struct {
	client.Reader
	n atomic.Int32
}

func (c *counting) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.n.Add(1)
	return c.Reader.Get(ctx, key, obj, opts...)
}

// TestReader reads Secrets through a real API server: once per
// resourceVersion, never the ones it is not asked for, and with no
// Secret data in the watched metadata.
func TestReader(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	opts := ctrl.Options{Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"}
	ManagerOptions(&opts)
	mgr, err := ctrl.NewManager(env.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	live := &counting{Reader: mgr.GetAPIReader()}
	r := &Reader{meta: mgr.GetCache(), live: live, data: map[client.ObjectKey]*corev1.Secret{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	const applied = `{"apiVersion":"v1","kind":"Secret","data":{"kubeconfig":"c2VjcmV0"}}`
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "member-a",
		Annotations: map[string]string{lastApplied: applied, "team": "a"}}, Data: map[string][]byte{"kubeconfig": []byte("v1")}}
	if err := env.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	// Many Secrets no one reads.
	for i := range 20 {
		other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", GenerateName: "unread-"}, Data: map[string][]byte{"k": []byte{byte(i)}}}
		if err := env.Client.Create(ctx, other); err != nil {
			t.Fatal(err)
		}
	}
	key := client.ObjectKeyFromObject(s)
	read := func(want string) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			got := &corev1.Secret{}
			if err := r.Get(ctx, key, got); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			return string(got.Data["kubeconfig"]) == want, nil
		}); err != nil {
			t.Fatalf("reading %s: data %q not seen: %v", key, want, err)
		}
	}

	read("v1")
	before := live.n.Load()
	for range 50 {
		read("v1")
	}
	if n := live.n.Load() - before; n != 0 {
		t.Errorf("50 reads of an unchanged Secret reached the API server %d times, want 0", n)
	}
	if r.Len() != 1 {
		t.Errorf("%d Secrets' data remembered, want the one read", r.Len())
	}

	s.Data["kubeconfig"] = []byte("v2")
	if err := env.Client.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	read("v2")

	// The watched metadata carries no copy of the data.
	m := Object()
	if err := mgr.GetCache().Get(ctx, key, m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Annotations[lastApplied]; ok || m.Annotations["team"] != "a" || len(m.ManagedFields) != 0 {
		t.Errorf("cached metadata: annotations %v, %d managedFields; want only team, none", m.Annotations, len(m.ManagedFields))
	}

	// A Secret that is gone is NotFound, and forgotten.
	if err := env.Client.Delete(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(r.Get(ctx, key, &corev1.Secret{})), nil
	}); err != nil {
		t.Fatalf("the deleted Secret is still read: %v", err)
	}
	if r.Len() != 0 {
		t.Errorf("%d Secrets' data remembered after the one read was deleted", r.Len())
	}
}
