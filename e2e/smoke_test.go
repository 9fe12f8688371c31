// Package e2e runs Marina's end-to-end tests on the local environment
// (internal/localenv), the same one `make up` starts.
//
// When an environment is recorded in the default folder the tests bring it
// up (a no-op when it runs), use it and leave it running; otherwise they
// bring one up and remove it at the end.
package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/marina-platform/marina/internal/localenv"
	"github.com/marina-platform/marina/internal/localenv/network"
	"github.com/marina-platform/marina/internal/localenv/node"
	"github.com/marina-platform/marina/internal/localenv/proc"
	"github.com/marina-platform/marina/internal/testenv"
)

var (
	env *localenv.Env
	// owned is true when the tests brought the environment up themselves.
	owned bool
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	// The clients report failures as errors; controller-runtime's own log
	// would only print a warning with a stack trace.
	ctrllog.SetLogger(logr.Discard())
	dir := localenv.DefaultDir()
	if existing, err := localenv.Load(dir); err == nil {
		// Up is idempotent: on a healthy environment it only checks, and it
		// restarts whatever died since (a reboot, a stopped session).
		env = existing
		env.Out = os.Stdout
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := env.Up(ctx); err != nil {
			return 1, fmt.Errorf("the environment recorded in %s does not come up (`make down` removes it): %w", dir, err)
		}
	} else {
		assets := os.Getenv(testenv.AssetsEnv)
		if assets == "" {
			return 1, fmt.Errorf("%s is not set: run `make test`", testenv.AssetsEnv)
		}
		root, err := testenv.RepoRoot()
		if err != nil {
			return 1, err
		}
		env, err = localenv.New(localenv.Options{DataCenters: 2, Members: 3, Dir: dir, BinDir: assets, RepoRoot: root})
		if err != nil {
			return 1, err
		}
		env.Out = os.Stdout
		owned = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := env.Up(ctx); err != nil {
			_ = env.Down(context.Background())
			return 1, fmt.Errorf("bring the environment up: %w", err)
		}
	}
	code := m.Run()
	if owned {
		if err := env.Down(context.Background()); err != nil {
			return code, fmt.Errorf("take the environment down: %w", err)
		}
	}
	return code, nil
}

func TestEveryPartIsHealthy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range env.Status(ctx) {
		if !p.Healthy {
			t.Errorf("%s %s: %s", p.DataCenter, p.Name, p.Detail)
		}
	}
}

// TestEveryMemberAnswersWithItsKubeconfigSecret reads each member's
// kubeconfig from the Secret the infrastructure provider wrote, as Marina's
// register operator will, and asks the member's API server for its version.
func TestEveryMemberAnswersWithItsKubeconfigSecret(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, dc := range env.DataCenters() {
		mgmt := clientset(t, dc.Kubeconfig())
		clusters, err := dynamicList(ctx, t, dc.Kubeconfig())
		if err != nil {
			t.Fatal(err)
		}
		if len(clusters) != len(dc.Members) {
			t.Errorf("%s: %d Cluster API Clusters, want %d", dc.Name, len(clusters), len(dc.Members))
		}
		for _, m := range dc.Members {
			secret, err := mgmt.CoreV1().Secrets(localenv.MembersNamespace).Get(ctx, m.Cluster.Name+"-kubeconfig", metav1.GetOptions{})
			if err != nil {
				t.Errorf("%s: %v", m.Cluster.Name, err)
				continue
			}
			cfg, err := clientcmd.RESTConfigFromKubeConfig(secret.Data["value"])
			if err != nil {
				t.Errorf("%s: kubeconfig in Secret: %v", m.Cluster.Name, err)
				continue
			}
			v, err := kubernetes.NewForConfigOrDie(cfg).Discovery().ServerVersion()
			if err != nil {
				t.Errorf("%s does not answer: %v", m.Cluster.Name, err)
				continue
			}
			if v.GitVersion == "" {
				t.Errorf("%s answered without a version", m.Cluster.Name)
			}
		}
	}
}

// dynamicList lists the Cluster API Clusters in the members namespace and
// checks each is marked initialized as a provider would.
func dynamicList(ctx context.Context, t *testing.T, kubeconfig string) ([]string, error) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	list, err := dc.Resource(schema.GroupVersionResource{Group: "cluster.x-k8s.io", Version: "v1beta2", Resource: "clusters"}).
		Namespace(localenv.MembersNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range list.Items {
		initialized, _, _ := unstructured.NestedBool(c.Object, "status", "initialization", "controlPlaneInitialized")
		if !initialized {
			t.Errorf("Cluster %s is not marked controlPlaneInitialized", c.GetName())
		}
		names = append(names, c.GetName())
	}
	return names, nil
}

// TestPodOnEveryNodeServesThroughAService runs the echo server on every node
// (the management clusters' and the members') and reaches it through its
// Service: by IP from inside the node, and by name from a pod.
func TestPodOnEveryNodeServesThroughAService(t *testing.T) {
	var nodes []node.Node
	for _, dc := range env.DataCenters() {
		nodes = append(nodes, dc.Nodes()...)
	}
	for _, n := range nodes {
		t.Run(n.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cs := clientset(t, n.Cluster.AdminKubeconfig())
			ns := "e2e-smoke"
			if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
			waitFor(ctx, t, "the default ServiceAccount", func() bool {
				_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
				return err == nil
			})

			labels := map[string]string{"app": "echo"}
			_, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "echo", Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name: "echo", Image: localenv.EchoImage, ImagePullPolicy: corev1.PullNever,
						Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
					}},
					TerminationGracePeriodSeconds: ptr.To[int64](1),
				},
			}, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			svc, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "echo"},
				Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
			}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				svc, err = cs.CoreV1().Services(ns).Get(ctx, "echo", metav1.GetOptions{})
			}
			if err != nil {
				t.Fatal(err)
			}
			waitFor(ctx, t, "pod echo Running on "+n.Name, func() bool {
				p, err := cs.CoreV1().Pods(ns).Get(ctx, "echo", metav1.GetOptions{})
				return err == nil && p.Status.Phase == corev1.PodRunning && p.Spec.NodeName == n.Name
			})

			inNode := &http.Client{Transport: &http.Transport{DialContext: network.DialContext(n.NetNS)}, Timeout: 3 * time.Second}
			url := "http://" + net.JoinHostPort(svc.Spec.ClusterIP, "80")
			var body string
			waitFor(ctx, t, "GET "+url+" inside "+n.Name, func() bool {
				body = get(ctx, inNode, url)
				return body == "hello from echo\n"
			})

			// A client pod on the same node reaches the Service by its
			// name, resolved by the cluster's CoreDNS.
			byName := "http://echo." + ns + ".svc.cluster.local/"
			phase, logs := runToCompletion(ctx, t, cs, ns, "client", n.Name, "-get", byName, "-tries", "60")
			if phase != corev1.PodSucceeded || string(logs) != "hello from echo\n" {
				t.Errorf("GET %s from a pod: %s, output %q", byName, phase, logs)
			}
		})
	}
}

// TestExternalEtcdSurvivesOneMemberStopped stops one member of the shared
// etcd cluster, writes and reads through the others, and restarts it.
func TestExternalEtcdSurvivesOneMemberStopped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	etcd := env.ExternalEtcd()
	cli, err := etcd.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	member := etcd.Processes()[2]
	t.Cleanup(func() { _ = etcd.Start(context.Background()) })
	if err := proc.Stop(member, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/marina/e2e/probe", "written with a member down"); err != nil {
		t.Fatalf("write with %s stopped: %v", member.Name, err)
	}
	got, err := cli.Get(ctx, "/marina/e2e/probe")
	if err != nil || len(got.Kvs) != 1 {
		t.Fatalf("read with %s stopped: %v %v", member.Name, got, err)
	}
	if err := etcd.Start(ctx); err != nil {
		t.Fatalf("restart %s: %v", member.Name, err)
	}
	if n, _ := etcd.Healthy(ctx); n != etcd.Members {
		t.Errorf("%d of %d members healthy after the restart", n, etcd.Members)
	}
	_, _ = cli.Delete(ctx, "/marina/e2e/probe")
}

// TestDownThenUp runs last: down must leave nothing behind, and up must
// then work again. It only runs on an environment the tests own.
func TestDownThenUp(t *testing.T) {
	if !owned {
		// Taking down an environment someone else started (`make up;
		// make test`) would be rude; on a fresh machine, as in CI, the
		// suite owns it and this runs.
		t.Skip("SKIP: the environment was already up before the suite started, so down and up again are not checked here; run `make down` first to check them")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := env.Down(ctx); err != nil {
		t.Fatal(err)
	}
	for _, l := range leftovers(env) {
		t.Errorf("left behind by down: %s", l)
	}
	if err := env.Up(ctx); err != nil {
		t.Fatalf("up after down: %v", err)
	}
	for _, p := range env.Status(ctx) {
		if !p.Healthy {
			t.Errorf("after down and up: %s %s: %s", p.DataCenter, p.Name, p.Detail)
		}
	}
}

// leftovers lists what the environment made that still exists.
func leftovers(e *localenv.Env) []string {
	var found []string
	if out, _ := exec.Command("ip", "netns", "list").Output(); len(out) > 0 {
		hosts := []network.Host{localenv.SharedHost}
		for _, dc := range e.DataCenters() {
			hosts = append(hosts, dc.Hosts()...)
		}
		for _, h := range hosts {
			if strings.Contains(string(out), h.Name) {
				found = append(found, "network namespace "+h.Name)
			}
		}
	}
	topo := localenv.Topology()
	if exec.Command("ip", "link", "show", topo.Bridge).Run() == nil {
		found = append(found, "bridge "+topo.Bridge)
	}
	if exec.Command("iptables", "-w", "-S", topo.Chain).Run() == nil {
		found = append(found, "iptables chain "+topo.Chain)
	}
	for _, r := range []string{topo.ServiceSubnet, topo.PodSubnet} {
		if out, _ := exec.Command("ip", "route", "show", "match", r).Output(); strings.Contains(string(out), r) || strings.Contains(string(out), "10.220.") {
			found = append(found, "route "+strings.TrimSpace(string(out)))
		}
	}
	if matches, _ := filepath.Glob("/sys/fs/cgroup/*/marina-dc*"); len(matches) > 0 {
		found = append(found, matches...)
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), e.Options().Dir) {
		found = append(found, "mounts under "+e.Options().Dir)
	}
	if _, err := os.Stat(e.Options().Dir); err == nil {
		found = append(found, "folder "+e.Options().Dir)
	}
	return found
}

func clientset(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

func waitFor(ctx context.Context, t *testing.T, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func get(ctx context.Context, client *http.Client, url string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ""
	}
	resp, err := client.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
