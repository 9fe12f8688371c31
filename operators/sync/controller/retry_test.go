package controller

import (
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestRetry walks one PolicySet through passes: refusals back off up to
// the bound, anything else resets the count.
func TestRetry(t *testing.T) {
	r := &Reconciler{RetryAfter: 30 * time.Second, MaxRetryAfter: 5 * time.Minute}
	key := client.ObjectKey{Namespace: "platform", Name: "baseline"}
	for i, step := range []struct {
		refused, incomplete bool
		want                time.Duration
	}{
		{false, false, 0},
		{true, true, 30 * time.Second},
		{true, true, time.Minute},
		{true, true, 2 * time.Minute},
		{true, true, 4 * time.Minute},
		{true, true, 5 * time.Minute},
		{true, true, 5 * time.Minute},
		// A control plane not ready (or unreachable): the usual wait,
		// and the count starts again.
		{false, true, 30 * time.Second},
		{true, true, 30 * time.Second},
		{false, false, 0},
		{true, true, 30 * time.Second},
	} {
		if got := r.retry(key, step.refused, step.incomplete).RequeueAfter; got != step.want {
			t.Errorf("pass %d (refused %v, incomplete %v): retried after %v, want %v", i, step.refused, step.incomplete, got, step.want)
		}
	}
	other := client.ObjectKey{Namespace: "platform", Name: "tenants"}
	if got := r.retry(other, true, true).RequeueAfter; got != 30*time.Second {
		t.Errorf("another PolicySet's first refusal: retried after %v, want 30s", got)
	}
}
