package e2e

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/marina-platform/marina/internal/localenv"
)

// checkNetworkPolicies: in the management cluster, where every node runs
// kube-network-policies, another tenant's pod reaches neither a control
// plane's etcd nor its API server, while Marina's operators' namespace
// reaches the API server and the same tenant pod reaches an unguarded
// Service (so a refusal is the policy's, not a broken client). Each probe
// is a pod that dials a few times and exits.
func checkNetworkPolicies(ctx context.Context, t *testing.T, cs kubernetes.Interface, cpNamespace, cp string, apiPort int32) {
	t.Helper()
	podIP := func(component string) string {
		pods, err := cs.CoreV1().Pods(cpNamespace).List(ctx, metav1.ListOptions{
			LabelSelector: "app.kubernetes.io/instance=" + cp + ",app.kubernetes.io/component=" + component})
		if err != nil || len(pods.Items) == 0 || pods.Items[0].Status.PodIP == "" {
			t.Fatalf("no %s pod of %s with an IP: %v", component, cp, err)
		}
		return pods.Items[0].Status.PodIP
	}
	apiserver := net.JoinHostPort(podIP("apiserver"), fmt.Sprint(apiPort))
	etcd := net.JoinHostPort(podIP("etcd"), "2379")
	dns := net.JoinHostPort("10.96.0.10", "53")

	other := cpNamespace + "-other-tenant"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), other, metav1.DeleteOptions{}) })

	for i, probe := range []struct {
		from, what, addr string
		reach            bool
	}{
		{other, "the cluster's DNS (no policy)", dns, true},
		{other, cp + "'s etcd", etcd, false},
		{other, cp + "'s API server", apiserver, false},
		{localenv.MarinaNamespace, cp + "'s API server", apiserver, true},
	} {
		name := fmt.Sprintf("netpol-probe-%d", i)
		got, out := dialFrom(ctx, t, cs, probe.from, name, probe.addr)
		t.Logf("from namespace %s to %s (%s): reached %t: %s", probe.from, probe.what, probe.addr, got, out)
		if got != probe.reach {
			t.Errorf("a pod in %s reached %s (%s): %t, want %t; it said: %s", probe.from, probe.what, probe.addr, got, probe.reach, out)
		}
	}
}

// dialFrom runs a pod in ns that opens a TCP connection to addr (3 tries,
// 3 s each) and says whether it got one, with its output.
func dialFrom(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name, addr string) (bool, string) {
	t.Helper()
	t.Cleanup(func() { _ = cs.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{}) })
	phase, logs := runToCompletion(ctx, t, cs, ns, name, "", "-dial", addr, "-tries", "3")
	return phase == corev1.PodSucceeded, logs
}

// runToCompletion runs the echoserver image with args as pod ns/name (on
// node when not empty) and waits, five minutes at most, for it to end:
// its phase and its output.
func runToCompletion(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name, node string, args ...string) (corev1.PodPhase, string) {
	t.Helper()
	_, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName:      node,
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "client", Image: localenv.EchoImage, ImagePullPolicy: corev1.PullNever, Args: args,
			}},
			TerminationGracePeriodSeconds: ptr.To[int64](1),
		},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	var phase corev1.PodPhase
	waitCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	waitFor(waitCtx, t, "pod "+ns+"/"+name+" to finish", func() bool {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			phase = p.Status.Phase
		}
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed
	})
	logs, _ := cs.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
	return phase, string(logs)
}
