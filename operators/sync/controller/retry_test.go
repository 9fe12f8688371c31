package controller

import (
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestRetry walks one PolicySet through passes: refusals back off up to
// the bound; anything else, or a new generation, starts the count again.
func TestRetry(t *testing.T) {
	r := &Reconciler{RetryAfter: 30 * time.Second, MaxRetryAfter: 5 * time.Minute}
	key := client.ObjectKey{Namespace: "platform", Name: "baseline"}
	for i, step := range []struct {
		generation          int64
		refused, incomplete bool
		want                time.Duration
	}{
		{1, false, false, 0},
		{1, true, true, 30 * time.Second},
		{1, true, true, time.Minute},
		{1, true, true, 2 * time.Minute},
		{1, true, true, 4 * time.Minute},
		{1, true, true, 5 * time.Minute},
		{1, true, true, 5 * time.Minute},
		// An edit that is refused too: its own count.
		{2, true, true, 30 * time.Second},
		{2, true, true, time.Minute},
		// A control plane not ready (or unreachable): the usual wait,
		// and the count starts again.
		{2, false, true, 30 * time.Second},
		{2, true, true, 30 * time.Second},
		{2, false, false, 0},
		{2, true, true, 30 * time.Second},
	} {
		if got := r.retry(key, step.generation, step.refused, step.incomplete).RequeueAfter; got != step.want {
			t.Errorf("pass %d (generation %d, refused %v, incomplete %v): retried after %v, want %v", i, step.generation, step.refused, step.incomplete, got, step.want)
		}
	}
	other := client.ObjectKey{Namespace: "platform", Name: "tenants"}
	if got := r.retry(other, 1, true, true).RequeueAfter; got != 30*time.Second {
		t.Errorf("another PolicySet's first refusal: retried after %v, want 30s", got)
	}
}

// TestTransient sorts errors into those that may pass by themselves and
// refusals a person acts on.
func TestTransient(t *testing.T) {
	gr := schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "rolebindings"}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"no answer", errors.New("dial tcp 10.0.0.1:6443: connect: connection refused"), true},
		{"a timeout", apierrors.NewTimeoutError("request did not complete", 1), true},
		{"overloaded", apierrors.NewTooManyRequests("slow down", 1), true},
		{"an internal error", apierrors.NewInternalError(errors.New("etcdserver: leader changed")), true},
		{"unavailable", apierrors.NewServiceUnavailable("shutting down"), true},
		{"a conflict", apierrors.NewConflict(gr, "admins", errors.New("modified")), true},
		{"forbidden", apierrors.NewForbidden(gr, "admins", errors.New(`user "marina:sync-operator" cannot create`)), false},
		{"invalid", apierrors.NewInvalid(schema.GroupKind{Group: "policy.karmada.io", Kind: "PropagationPolicy"}, "web", nil), false},
		{"bad request", apierrors.NewBadRequest("strict decoding error: unknown field"), false},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("%s: transient = %v, want %v", tc.name, got, tc.want)
		}
	}
}
