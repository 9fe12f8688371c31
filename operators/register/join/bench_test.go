package join_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/marina-platform/marina/operators/register/join"
)

// BenchmarkJoin measures one join of a member to a control plane against
// the real API servers of TestMain, the member's token controller
// included: from the first request to both sides done. Each iteration
// joins a control plane the member has not joined before, then unjoins
// it; a ServiceAccount of someone else's keeps the member's namespace, as
// a member joined elsewhere too has it. Reports the p50 and p99 of the
// joins next to the time of a whole join-and-unjoin cycle (ns/op).
func BenchmarkJoin(b *testing.B) {
	ctx := context.Background()
	t := b
	keep := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: join.Namespace, Name: "someone-elses"}}
	_ = clientOf(t, member.Config).Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: join.Namespace}})
	_ = clientOf(t, member.Config).Create(ctx, keep)
	defer func() { _ = clientOf(t, member.Config).Delete(ctx, keep) }()

	var joins []time.Duration
	b.ResetTimer()
	for i := range b.N {
		p := pair(t, "bench", join.ControlPlaneID("bench", "default", fmt.Sprint(i)))
		start := time.Now()
		for {
			res, err := join.Join(ctx, p)
			if err != nil {
				b.Fatal(err)
			}
			if res.Waiting == "" {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		joins = append(joins, time.Since(start))
		for {
			done, err := join.UnjoinFederation(ctx, p)
			if err != nil {
				b.Fatal(err)
			}
			if done {
				break
			}
		}
		if err := join.UnjoinMember(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	slices.Sort(joins)
	b.ReportMetric(float64(joins[len(joins)/2].Microseconds())/1000, "join-p50-ms")
	b.ReportMetric(float64(joins[len(joins)*99/100].Microseconds())/1000, "join-p99-ms")
}
