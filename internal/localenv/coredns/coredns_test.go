package coredns

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marina-platform/marina/internal/testenv"
)

var testValues = Values{Image: "marina.local/coredns:v1.14.7", ClusterIP: "10.96.0.10"}

// wantCorefile is the Corefile the Deployment runs. Changing it is a change
// of the cluster's DNS: look at the diff.
const wantCorefile = `.:53 {
    errors
    health :8080 {
        lameduck 5s
    }
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    cache 30
    loop
    reload
    loadbalance
}
`

func TestCorefile(t *testing.T) {
	tests := []struct {
		name    string
		opts    CorefileOptions
		want    []string
		notWant []string
		err     bool
	}{
		{
			name:    "deployment",
			opts:    CorefileOptions{},
			want:    []string{wantCorefile},
			notWant: []string{"bind", "kubeconfig"},
		},
		{
			name: "process on the host",
			opts: CorefileOptions{
				ClusterDomain: "example.internal.", Port: 15353, BindAddress: "127.0.0.1",
				HealthAddress: "127.0.0.1:18080", ReadyAddress: "127.0.0.1:18181",
				Kubeconfig: "/tmp/a b/kubeconfig", KubeconfigContext: "admin",
			},
			want: []string{
				".:15353 {\n    bind 127.0.0.1\n",
				"health 127.0.0.1:18080 {",
				"ready 127.0.0.1:18181\n",
				"kubernetes example.internal in-addr.arpa ip6.arpa {",
				`kubeconfig "/tmp/a b/kubeconfig" "admin"`,
			},
		},
		{name: "domain with a brace", opts: CorefileOptions{ClusterDomain: "cluster.local {"}, err: true},
		{name: "port out of range", opts: CorefileOptions{Port: 70000}, err: true},
		{name: "bind to a name", opts: CorefileOptions{BindAddress: "localhost"}, err: true},
		{name: "health without port", opts: CorefileOptions{HealthAddress: "127.0.0.1"}, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Corefile(tt.opts)
			if tt.err {
				if err == nil {
					t.Fatalf("Corefile(%+v) = %q, want an error", tt.opts, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// No upstream, whatever the options: the network rule.
			if strings.Contains(got, "forward") {
				t.Errorf("Corefile has a forward:\n%s", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("Corefile lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("Corefile has %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestObjects(t *testing.T) {
	objs, err := Objects(testValues)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
		if o.GetLabels()["app.kubernetes.io/managed-by"] != FieldManager {
			t.Errorf("%T %s has no managed-by label: %v", o, o.GetName(), o.GetLabels())
		}
	}
	if want := []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Service"}; !slices.Equal(kinds, want) {
		t.Fatalf("kinds = %v, want %v", kinds, want)
	}
	sa := objs[0].(*corev1.ServiceAccount)
	role := objs[1].(*rbacv1.ClusterRole)
	binding := objs[2].(*rbacv1.ClusterRoleBinding)
	cm := objs[3].(*corev1.ConfigMap)
	dep := objs[4].(*appsv1.Deployment)
	svc := objs[5].(*corev1.Service)

	if got := cm.Data["Corefile"]; got != wantCorefile {
		t.Errorf("ConfigMap Corefile =\n%s\nwant\n%s", got, wantCorefile)
	}

	if svc.Name != "kube-dns" || svc.Namespace != "kube-system" || svc.Spec.ClusterIP != "10.96.0.10" {
		t.Errorf("Service %s/%s clusterIP %q, want kube-system/kube-dns 10.96.0.10", svc.Namespace, svc.Name, svc.Spec.ClusterIP)
	}
	var ports []string
	for _, p := range svc.Spec.Ports {
		ports = append(ports, fmt.Sprintf("%d/%s->%s", p.Port, p.Protocol, p.TargetPort.String()))
	}
	if want := []string{"53/UDP->53", "53/TCP->53"}; !slices.Equal(ports, want) {
		t.Errorf("Service ports = %v, want %v", ports, want)
	}

	pod := dep.Spec.Template
	for k, v := range svc.Spec.Selector {
		if pod.Labels[k] != v || dep.Spec.Selector.MatchLabels[k] != v {
			t.Errorf("Service selector %s=%s does not select the Deployment's pods %v", k, v, pod.Labels)
		}
	}
	if *dep.Spec.Replicas != 1 {
		t.Errorf("replicas = %d, want the default 1", *dep.Spec.Replicas)
	}
	if pod.Spec.ServiceAccountName != sa.Name || binding.Subjects[0].Name != sa.Name ||
		binding.Subjects[0].Namespace != sa.Namespace || binding.RoleRef.Name != role.Name {
		t.Errorf("pod's service account %q is not bound to ClusterRole %q: %+v", pod.Spec.ServiceAccountName, role.Name, binding)
	}
	var watched []string
	for _, r := range role.Rules {
		if slices.Contains(r.Verbs, "list") && slices.Contains(r.Verbs, "watch") {
			watched = append(watched, r.Resources...)
		}
	}
	for _, want := range []string{"endpoints", "endpointslices", "services", "pods", "namespaces"} {
		if !slices.Contains(watched, want) {
			t.Errorf("ClusterRole does not let CoreDNS list and watch %s: %+v", want, role.Rules)
		}
	}

	c := pod.Spec.Containers[0]
	if c.Image != testValues.Image || c.ImagePullPolicy != corev1.PullNever {
		t.Errorf("image %q pull %q, want %q Never", c.Image, c.ImagePullPolicy, testValues.Image)
	}
	if want := []string{"-conf", "/etc/coredns/Corefile"}; !slices.Equal(c.Args, want) {
		t.Errorf("args = %v, want %v", c.Args, want)
	}
	if p := c.LivenessProbe.HTTPGet; p.Path != "/health" || p.Port.IntValue() != 8080 {
		t.Errorf("liveness probe %s:%s, want /health:8080", p.Path, p.Port.String())
	}
	if p := c.ReadinessProbe.HTTPGet; p.Path != "/ready" || p.Port.IntValue() != 8181 {
		t.Errorf("readiness probe %s:%s, want /ready:8181", p.Path, p.Port.String())
	}
	// Non-root on port 53: the pod must lower the privileged port range.
	psc := pod.Spec.SecurityContext
	if !ptr.Deref(psc.RunAsNonRoot, false) ||
		!slices.Contains(psc.Sysctls, corev1.Sysctl{Name: "net.ipv4.ip_unprivileged_port_start", Value: "53"}) {
		t.Errorf("pod security context %+v: want non-root with ip_unprivileged_port_start=53", psc)
	}
	if m := c.VolumeMounts[0]; m.MountPath != "/etc/coredns" || pod.Spec.Volumes[0].ConfigMap.Name != cm.Name {
		t.Errorf("Corefile volume %+v / %+v does not mount ConfigMap %s at /etc/coredns", m, pod.Spec.Volumes[0], cm.Name)
	}
}

func TestObjectsRejectsBadValues(t *testing.T) {
	for name, v := range map[string]Values{
		"no image":          {ClusterIP: "10.96.0.10"},
		"no cluster IP":     {Image: "marina.local/coredns:v1"},
		"cluster IP a name": {Image: "marina.local/coredns:v1", ClusterIP: "kube-dns"},
		"bad domain":        {Image: "marina.local/coredns:v1", ClusterIP: "10.96.0.10", ClusterDomain: "a..b"},
		"negative replicas": {Image: "marina.local/coredns:v1", ClusterIP: "10.96.0.10", Replicas: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Objects(v); err == nil {
				t.Errorf("Objects(%+v) succeeded, want an error", v)
			}
		})
	}
}

// TestAgainstAPIServer runs the real CoreDNS binary as a process against a
// real API server: it must answer cluster.local names from Services and
// EndpointSlices, and nothing else.
func TestAgainstAPIServer(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop test API server: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("apply", func(t *testing.T) { testApply(ctx, t, env.Client) })
	t.Run("serve", func(t *testing.T) { testServe(ctx, t, env) })
}

func testApply(ctx context.Context, t *testing.T, c client.Client) {
	// envtest's API server allocates cluster IPs from 10.0.0.0/24.
	v := Values{Image: "marina.local/coredns:v1.14.7", ClusterIP: "10.0.0.10", Replicas: 2}
	for i := 0; i < 2; i++ { // a second apply is a no-op, not a conflict
		if err := Apply(ctx, c, v); err != nil {
			t.Fatalf("apply #%d: %v", i+1, err)
		}
	}
	svc := &corev1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: ServiceName}, svc); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != v.ClusterIP {
		t.Errorf("kube-dns cluster IP = %s, want %s", svc.Spec.ClusterIP, v.ClusterIP)
	}
	dep := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: Name}, dep); err != nil {
		t.Fatal(err)
	}
	if *dep.Spec.Replicas != 2 || !slices.ContainsFunc(dep.ManagedFields, func(m metav1.ManagedFieldsEntry) bool {
		return m.Manager == FieldManager && m.Operation == metav1.ManagedFieldsOperationApply
	}) {
		t.Errorf("Deployment replicas %d, managed fields %v: want 2, applied by %s", *dep.Spec.Replicas, dep.ManagedFields, FieldManager)
	}

	// No controllers run here, so no pod becomes available: WaitReady
	// must give up in time and say what it saw.
	err := WaitReady(ctx, c, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "0 of 2 replicas available") {
		t.Errorf("WaitReady without pods = %v, want a timeout saying 0 of 2 replicas are available", err)
	}

	if err := Destroy(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: ServiceName}, svc); !apierrors.IsNotFound(err) {
		t.Errorf("kube-dns after Destroy: %v, want not found", err)
	}
	if err := Destroy(ctx, c); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func testServe(ctx context.Context, t *testing.T, env *testenv.Env) {
	bin := filepath.Join(os.Getenv(testenv.AssetsEnv), "coredns")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no CoreDNS binary (run `make test-binaries`): %v", err)
	}
	c := env.Client

	const ns = "dns-test"
	mustCreate(ctx, t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	web := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
	mustCreate(ctx, t, c, web)
	db := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Ports:     []corev1.ServicePort{{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP}},
		},
	}
	mustCreate(ctx, t, c, db)
	// Endpoint addresses are only data here (TEST-NET-1), never contacted.
	for svc, ips := range map[string][]string{"web": {"192.0.2.10"}, "db": {"192.0.2.11", "192.0.2.12"}} {
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Name: svc + "-1", Namespace: ns,
				Labels: map[string]string{discoveryv1.LabelServiceName: svc},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("p"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
		}
		for _, ip := range ips {
			slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{ip},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			})
		}
		mustCreate(ctx, t, c, slice)
	}

	dir := t.TempDir()
	kubeconfig, err := env.KubeconfigFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	dnsPort, healthPort, readyPort := freePort(t), freePort(t), freePort(t)
	corefile, err := Corefile(CorefileOptions{
		Port:          dnsPort,
		BindAddress:   "127.0.0.1",
		HealthAddress: net.JoinHostPort("127.0.0.1", strconv.Itoa(healthPort)),
		ReadyAddress:  net.JoinHostPort("127.0.0.1", strconv.Itoa(readyPort)),
		Kubeconfig:    kubeconfig,
	})
	if err != nil {
		t.Fatal(err)
	}
	corefilePath := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(corefilePath, []byte(corefile), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "coredns.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-conf", corefilePath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logFile.Close()
		if t.Failed() || testing.Verbose() {
			out, _ := os.ReadFile(logPath)
			t.Logf("CoreDNS output:\n%s", out)
		}
	})

	// /ready answers 200 once the kubernetes plugin has synced its caches.
	waitFor(ctx, t, 60*time.Second, "CoreDNS /ready", func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", readyPort))
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	})

	dnsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(dnsPort))
	resolver := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, dnsAddr)
		},
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(web), web); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{
		"web.dns-test.svc.cluster.local.": {web.Spec.ClusterIP},
		"db.dns-test.svc.cluster.local.":  {"192.0.2.11", "192.0.2.12"}, // headless: the endpoints
	} {
		waitFor(ctx, t, 30*time.Second, "resolve "+name, func() error {
			ips, err := resolver.LookupIP(ctx, "ip4", name)
			if err != nil {
				return err
			}
			var got []string
			for _, ip := range ips {
				got = append(got, ip.String())
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				return fmt.Errorf("got %v, want %v", got, want)
			}
			return nil
		})
	}

	// No upstream: a name outside cluster.local never resolves, and the
	// answer is CoreDNS's own SERVFAIL (see the package comment), at once.
	lookupCtx, lookupCancel := context.WithTimeout(ctx, 5*time.Second)
	defer lookupCancel()
	if ips, err := resolver.LookupIP(lookupCtx, "ip4", "example.com."); err == nil {
		t.Errorf("example.com resolved to %v through CoreDNS, which must have no upstream", ips)
	} else if dnsErr := (*net.DNSError)(nil); !errors.As(err, &dnsErr) || dnsErr.IsTimeout {
		t.Errorf("example.com: %v, want a DNS answer refusing it, not a timeout", err)
	}
	for _, name := range []string{"example.com.", "1.2.0.192.in-addr.arpa."} {
		rcode, answers, err := query(dnsAddr, name)
		if err != nil {
			t.Fatalf("query %s: %v", name, err)
		}
		if rcode != rcodeServFail || answers != 0 {
			t.Errorf("%s: rcode %d with %d answers, want SERVFAIL (%d) with none", name, rcode, answers, rcodeServFail)
		}
	}
	// A name in the cluster domain that does not exist is NXDOMAIN.
	if rcode, _, err := query(dnsAddr, "nope.dns-test.svc.cluster.local."); err != nil || rcode != rcodeNXDomain {
		t.Errorf("nope.dns-test.svc.cluster.local: rcode %d, %v; want NXDOMAIN (%d)", rcode, err, rcodeNXDomain)
	}
}

func mustCreate(ctx context.Context, t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(ctx, obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

// freePort is a port free on 127.0.0.1 for both UDP and TCP right now.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		_ = u.Close()
		if err == nil {
			_ = l.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP on 127.0.0.1")
	return 0
}

func waitFor(ctx context.Context, t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s: not done after %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

const (
	rcodeServFail = 2
	rcodeNXDomain = 3
)

// query sends one A query over UDP and returns the response code and the
// number of answers: net.Resolver folds SERVFAIL and REFUSED into one error.
func query(addr, name string) (rcode, answers int, err error) {
	const id = 0x4d52
	msg := []byte{id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0} // RD, one question
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		msg = append(msg, byte(len(label)))
		msg = append(msg, label...)
	}
	msg = append(msg, 0, 0, 1, 0, 1) // root, type A, class IN

	conn, err := net.Dial("udp", addr)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return 0, 0, err
	}
	if _, err := conn.Write(msg); err != nil {
		return 0, 0, err
	}
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	if err != nil {
		return 0, 0, err
	}
	resp := buf[:n]
	if n < 12 || binary.BigEndian.Uint16(resp) != id || resp[2]&0x80 == 0 {
		return 0, 0, fmt.Errorf("not a response to our query: % x", resp)
	}
	if !bytes.Equal(resp[12:min(n, len(msg))], msg[12:]) {
		return 0, 0, fmt.Errorf("response is for another question: % x", resp)
	}
	return int(resp[3] & 0x0f), int(binary.BigEndian.Uint16(resp[6:8])), nil
}
