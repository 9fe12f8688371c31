package controller

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestRolloutProblem(t *testing.T) {
	deploy := func(gen, observed int64, replicas, updated, total, available int32) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "cp-apiserver", Generation: gen},
			Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
			Status: appsv1.DeploymentStatus{
				ObservedGeneration: observed, UpdatedReplicas: updated, Replicas: total, AvailableReplicas: available,
			},
		}
	}
	tests := []struct {
		name string
		d    *appsv1.Deployment
		want string
	}{
		{"rolled out", deploy(2, 2, 3, 3, 3, 3), ""},
		{"change not seen", deploy(3, 2, 3, 3, 3, 3), "cp-apiserver: the change is not picked up yet"},
		{"surging", deploy(2, 2, 1, 1, 2, 1), "cp-apiserver: 1 old replicas still running"},
		{"updating", deploy(2, 2, 3, 1, 4, 3), "cp-apiserver: 1 of 3 replicas updated"},
		{"starting", deploy(1, 1, 1, 1, 1, 0), "cp-apiserver: 0 of 1 replicas available"},
		{"stuck", func() *appsv1.Deployment {
			d := deploy(1, 1, 1, 1, 1, 0)
			d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
				Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "cp-apiserver-5d" has timed out progressing.`}}
			return d
		}(), `cp-apiserver: the rollout missed its progress deadline: ReplicaSet "cp-apiserver-5d" has timed out progressing.; look at its pods' events`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := rolloutProblem(tc.d)
			if got != tc.want {
				t.Errorf("rolloutProblem = %q, want %q", got, tc.want)
			}
			if rolloutStuck(got) != (tc.name == "stuck") {
				t.Errorf("rolloutStuck(%q) = %t", got, rolloutStuck(got))
			}
		})
	}
}

func TestStatefulSetProblem(t *testing.T) {
	sts := func(replicas, updated, ready int32, current, update string) *appsv1.StatefulSet {
		return &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: "cp-etcd", Generation: 1},
			Spec:       appsv1.StatefulSetSpec{Replicas: ptr.To(replicas)},
			Status: appsv1.StatefulSetStatus{
				ObservedGeneration: 1, UpdatedReplicas: updated, ReadyReplicas: ready, CurrentRevision: current, UpdateRevision: update,
			},
		}
	}
	for _, tc := range []struct {
		name string
		s    *appsv1.StatefulSet
		want string
	}{
		{"ready", sts(3, 3, 3, "r1", "r1"), ""},
		{"members starting", sts(3, 3, 1, "r1", "r1"), "cp-etcd: 1 of 3 members ready"},
		{"rolling", sts(3, 2, 3, "r1", "r2"), "cp-etcd: 2 of 3 members updated"},
	} {
		if got := statefulSetProblem(tc.s); got != tc.want {
			t.Errorf("%s: statefulSetProblem = %q, want %q", tc.name, got, tc.want)
		}
	}
}
