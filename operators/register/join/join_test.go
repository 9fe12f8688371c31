package join_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/register/join"
)

// Two real API servers: a member, with the kube-controller-manager token
// controller every real cluster runs, and a control plane, with the
// engine's Cluster kind (Marina's stand-in CRD, the same group, version and
// schema as the engine's aggregated API).
var member, federation *testenv.Env

// federationUser is the register operator's user in the federation, with
// the rights a Marina control plane grants it: joins go through it.
var federationUser *rest.Config

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctrllog.SetLogger(logr.Discard())
	var err error
	if member, err = testenv.Start(); err != nil {
		println(err.Error())
		return 1
	}
	defer func() { _ = member.Stop() }()
	dir, err := os.MkdirTemp("", "join-member-")
	if err != nil {
		println(err.Error())
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	stop, err := member.StartControllerManager(dir, "serviceaccount-token", "serviceaccount", "namespace", "garbagecollector")
	if err != nil {
		println(err.Error())
		return 1
	}
	defer func() { _ = stop() }()

	if federation, err = testenv.Start(); err != nil {
		println(err.Error())
		return 1
	}
	defer func() { _ = federation.Stop() }()
	root, err := testenv.RepoRoot()
	if err != nil {
		println(err.Error())
		return 1
	}
	if err := federation.InstallCRDs([]string{filepath.Join(root, "operators", "controlplane", "component", "crds", "standin-cluster.yaml")}); err != nil {
		println(err.Error())
		return 1
	}
	if federationUser, _, err = federation.RegistrationUser(context.Background()); err != nil {
		println(err.Error())
		return 1
	}
	return m.Run()
}

func clientOf(t testing.TB, cfg *rest.Config) client.Client {
	t.Helper()
	c, err := client.New(cfg, client.Options{Scheme: join.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pair(t testing.TB, name, cpID string) join.Pair {
	return join.Pair{
		Cluster:        name,
		ControlPlaneID: cpID,
		Member:         clientOf(t, member.Config),
		MemberConfig:   member.Config,
		Federation:     clientOf(t, federationUser),
		Properties: marinav1alpha1.ClusterProperties{
			Provider: "onprem", Region: "eu-west", Zones: []string{"a", "b"},
			ClusterLabels: map[string]string{"tier": "gold"},
			Taints:        []corev1.Taint{{Key: "dedicated", Value: "batch", Effect: corev1.TaintEffectNoSchedule}},
		},
	}
}

// joinUntilDone calls Join until the member's token controller has filled
// the token Secrets.
func joinUntilDone(ctx context.Context, t *testing.T, p join.Pair) join.Result {
	t.Helper()
	// A test that fails half-way leaves no Cluster holding the member's
	// ID for the next one (which would then fail on a conflict).
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			return join.UnjoinFederation(ctx, p)
		})
		_ = join.UnjoinMember(ctx, p)
	})
	var res join.Result
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		res, err = join.Join(ctx, p)
		return err == nil && res.Waiting == "", err
	})
	if err != nil {
		t.Fatalf("join %s: %v (last: %+v)", p.Cluster, err, res)
	}
	return res
}

func getCluster(ctx context.Context, t *testing.T, c client.Client, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(join.ClusterGVK)
	if err := c.Get(ctx, client.ObjectKey{Name: name}, u); err != nil {
		t.Fatalf("Cluster %s: %v", name, err)
	}
	return u
}

// TestJoinLeavesWhatKarmadactlLeaves joins a member, checks every object on
// both sides against karmadactl's, uses the stored tokens against the real
// member API server, and unjoins to nothing.
func TestJoinLeavesWhatKarmadactlLeaves(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := pair(t, "edge-1", join.ControlPlaneID("dc1", "default", "prod"))
	res := joinUntilDone(ctx, t, p)

	ks := &corev1.Namespace{}
	if err := p.Member.Get(ctx, client.ObjectKey{Name: "kube-system"}, ks); err != nil {
		t.Fatal(err)
	}
	if res.ClusterID != string(ks.UID) {
		t.Errorf("cluster ID %q, want the member's kube-system UID %q", res.ClusterID, ks.UID)
	}

	// The control plane's side.
	cl := getCluster(ctx, t, p.Federation, "edge-1")
	for path, want := range map[string]any{
		"spec.syncMode":                        "Push",
		"spec.apiEndpoint":                     member.Config.Host,
		"spec.id":                              string(ks.UID),
		"spec.secretRef.namespace":             "karmada-cluster",
		"spec.secretRef.name":                  "edge-1",
		"spec.impersonatorSecretRef.namespace": "karmada-cluster",
		"spec.impersonatorSecretRef.name":      "edge-1-impersonator",
		"spec.provider":                        "onprem",
		"spec.region":                          "eu-west",
		"metadata.labels.tier":                 "gold",
	} {
		got, _, _ := unstructured.NestedFieldNoCopy(cl.Object, strings.Split(path, ".")...)
		if got != want {
			t.Errorf("Cluster %s = %v, want %v", path, got, want)
		}
	}
	zones, _, _ := unstructured.NestedStringSlice(cl.Object, "spec", "zones")
	taints, _, _ := unstructured.NestedSlice(cl.Object, "spec", "taints")
	if len(zones) != 2 || len(taints) != 1 {
		t.Errorf("Cluster zones %v taints %v, want 2 zones and the dedicated taint", zones, taints)
	}
	secrets := map[string]*corev1.Secret{}
	for _, name := range []string{"edge-1", "edge-1-impersonator"} {
		s := &corev1.Secret{}
		if err := p.Federation.Get(ctx, client.ObjectKey{Namespace: "karmada-cluster", Name: name}, s); err != nil {
			t.Fatalf("control plane Secret %s: %v", name, err)
		}
		if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != cl.GetUID() || s.OwnerReferences[0].Kind != "Cluster" {
			t.Errorf("Secret %s owners %+v, want the Cluster", name, s.OwnerReferences)
		}
		secrets[name] = s
	}
	if len(secrets["edge-1"].Data["caBundle"]) == 0 || len(secrets["edge-1"].Data["token"]) == 0 || len(secrets["edge-1-impersonator"].Data["token"]) == 0 {
		t.Fatal("the credential Secrets lack caBundle or token")
	}

	// The member's side, named as karmadactl names it.
	for _, o := range []struct {
		obj client.Object
		key client.ObjectKey
	}{
		{&corev1.Namespace{}, client.ObjectKey{Name: "karmada-cluster"}},
		{&corev1.ServiceAccount{}, client.ObjectKey{Namespace: "karmada-cluster", Name: "karmada-edge-1"}},
		{&corev1.ServiceAccount{}, client.ObjectKey{Namespace: "karmada-cluster", Name: "karmada-impersonator"}},
		{&rbacv1.ClusterRole{}, client.ObjectKey{Name: "karmada-controller-manager:karmada-edge-1"}},
		{&rbacv1.ClusterRoleBinding{}, client.ObjectKey{Name: "karmada-controller-manager:karmada-edge-1"}},
	} {
		if err := p.Member.Get(ctx, o.key, o.obj); err != nil {
			t.Errorf("member %T %s: %v", o.obj, o.key, err)
		}
	}

	// The engine's token lists the member's nodes; the impersonator's
	// authenticates as karmada-impersonator and, once the engine's
	// unified-auth controller has granted it a user (the test plays that
	// part: the engine does not run here), acts as that user.
	engine := tokenConfig(secrets["edge-1"].Data["token"], secrets["edge-1"].Data["caBundle"])
	cs := kubernetes.NewForConfigOrDie(engine)
	if _, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("list the member's nodes with the stored token: %v", err)
	}
	imp := tokenConfig(secrets["edge-1-impersonator"].Data["token"], secrets["edge-1"].Data["caBundle"])
	if who := whoAmI(ctx, t, imp); who != "system:serviceaccount:karmada-cluster:karmada-impersonator" {
		t.Errorf("the impersonator token authenticates as %q", who)
	}
	grantImpersonation(ctx, t, p.Member, "alice")
	imp.Impersonate = rest.ImpersonationConfig{UserName: "alice"}
	if who := whoAmI(ctx, t, imp); who != "alice" {
		t.Errorf("impersonating alice with the stored token, the member sees %q", who)
	}

	// A second pass writes nothing.
	before := resourceVersions(ctx, t, p)
	if _, err := join.Join(ctx, p); err != nil {
		t.Fatal(err)
	}
	if after := resourceVersions(ctx, t, p); after != before {
		t.Errorf("an unchanged join wrote: resource versions %s, then %s", before, after)
	}

	unjoin(ctx, t, p)
	if err := p.Member.Get(ctx, client.ObjectKey{Name: "karmada-cluster"}, &corev1.Namespace{}); err == nil {
		ns := &corev1.Namespace{}
		_ = p.Member.Get(ctx, client.ObjectKey{Name: "karmada-cluster"}, ns)
		if ns.DeletionTimestamp == nil {
			t.Error("the member's karmada-cluster namespace Marina made is still there after the last unjoin")
		}
	}
	for _, o := range []struct {
		obj client.Object
		key client.ObjectKey
	}{
		{&rbacv1.ClusterRole{}, client.ObjectKey{Name: "karmada-controller-manager:karmada-edge-1"}},
		{&rbacv1.ClusterRoleBinding{}, client.ObjectKey{Name: "karmada-controller-manager:karmada-edge-1"}},
	} {
		if err := p.Member.Get(ctx, o.key, o.obj); !apierrors.IsNotFound(err) {
			t.Errorf("member %T %s after unjoin: %v, want NotFound", o.obj, o.key, err)
		}
	}
	// The revoked token no longer works.
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return apierrors.IsUnauthorized(err), nil
	})
	if err != nil {
		t.Error("the engine's token still authenticates after unjoin")
	}
}

// TestTwoControlPlanes joins one member to two control planes (its data
// center's and a standby's): each holds its own token, and unjoining one
// leaves the other's working.
func TestTwoControlPlanes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := pair(t, "edge-2", join.ControlPlaneID("dc1", "default", "a"))
	b := pair(t, "edge-2", join.ControlPlaneID("dc2", "default", "b"))
	joinUntilDone(ctx, t, a)
	tokenA := fedSecret(ctx, t, a, "edge-2").Data["token"]
	// One test API server plays both control planes, which would hold the
	// same Cluster: a's leaves it before b's joins. The member keeps a's
	// token Secret until its member side is unjoined.
	if _, err := join.UnjoinFederation(ctx, a); err != nil {
		t.Fatal(err)
	}
	waitGone(ctx, t, a)
	joinUntilDone(ctx, t, b)
	tokenB := fedSecret(ctx, t, b, "edge-2").Data["token"]
	if string(tokenA) == string(tokenB) {
		t.Fatal("two control planes hold the same token")
	}
	if err := join.UnjoinMember(ctx, a); err != nil {
		t.Fatal(err)
	}
	ca := fedSecret(ctx, t, b, "edge-2").Data["caBundle"]
	cs := kubernetes.NewForConfigOrDie(tokenConfig(tokenB, ca))
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Errorf("b's token after a's unjoin: %v", err)
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := kubernetes.NewForConfigOrDie(tokenConfig(tokenA, ca)).CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		return apierrors.IsUnauthorized(err), nil
	})
	if err != nil {
		t.Error("a's token still works after a's unjoin")
	}
	if err := b.Member.Get(ctx, client.ObjectKey{Namespace: "karmada-cluster", Name: "karmada-edge-2"}, &corev1.ServiceAccount{}); err != nil {
		t.Errorf("the shared ServiceAccount went with a's unjoin while b uses it: %v", err)
	}
	unjoin(ctx, t, b)
}

// TestConflicts refuses to take over what someone else made, and a second
// name for the same member.
func TestConflicts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fed := clientOf(t, federation.Config)

	byHand := &unstructured.Unstructured{}
	byHand.SetGroupVersionKind(join.ClusterGVK)
	byHand.SetName("by-hand")
	_ = unstructured.SetNestedField(byHand.Object, "Push", "spec", "syncMode")
	if err := fed.Create(ctx, byHand); err != nil {
		t.Fatal(err)
	}
	p := pair(t, "by-hand", join.ControlPlaneID("dc1", "default", "prod"))
	if _, err := join.Join(ctx, p); !join.IsConflict(err) {
		t.Errorf("joining over a Cluster made by hand: %v, want a conflict", err)
	}
	if _, err := join.UnjoinFederation(ctx, p); err != nil {
		t.Fatal(err)
	}
	getCluster(ctx, t, fed, "by-hand") // still there
	if err := fed.Delete(ctx, byHand); err != nil {
		t.Fatal(err)
	}

	first := pair(t, "edge-3", join.ControlPlaneID("dc1", "default", "prod"))
	joinUntilDone(ctx, t, first)
	second := pair(t, "edge-3-again", join.ControlPlaneID("dc1", "default", "prod"))
	if _, err := join.Join(ctx, second); !join.IsConflict(err) {
		t.Errorf("joining the same member under a second name: %v, want a conflict", err)
	}
	unjoin(ctx, t, first)
}

func unjoin(ctx context.Context, t *testing.T, p join.Pair) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return join.UnjoinFederation(ctx, p)
	})
	if err != nil {
		t.Fatalf("unjoin %s from the control plane: %v", p.Cluster, err)
	}
	if err := join.UnjoinMember(ctx, p); err != nil {
		t.Fatalf("unjoin %s in the member: %v", p.Cluster, err)
	}
	waitGone(ctx, t, p)
}

func waitGone(ctx context.Context, t *testing.T, p join.Pair) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return join.UnjoinFederation(ctx, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{p.Cluster, p.Cluster + "-impersonator"} {
		if err := p.Federation.Get(ctx, client.ObjectKey{Namespace: "karmada-cluster", Name: name}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
			t.Errorf("control plane Secret %s after unjoin: %v, want NotFound", name, err)
		}
	}
}

func fedSecret(ctx context.Context, t *testing.T, p join.Pair, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := p.Federation.Get(ctx, client.ObjectKey{Namespace: "karmada-cluster", Name: name}, s); err != nil {
		t.Fatal(err)
	}
	return s
}

func tokenConfig(token, ca []byte) *rest.Config {
	return &rest.Config{
		Host:            member.Config.Host,
		BearerToken:     string(token),
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
	}
}

func whoAmI(ctx context.Context, t *testing.T, cfg *rest.Config) string {
	t.Helper()
	var r *authenticationv1.SelfSubjectReview
	var err error
	// A grant made a moment ago (grantImpersonation) reaches the API
	// server's RBAC authorizer through its informer: a forbidden answer is
	// asked again for a few seconds before it counts.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r, err = kubernetes.NewForConfigOrDie(cfg).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("who am I: %v", err)
	}
	return r.Status.UserInfo.Username
}

// grantImpersonation is what the engine's unified-auth controller does for
// a user allowed to use the cluster proxy.
func grantImpersonation(ctx context.Context, t *testing.T, c client.Client, user string) {
	t.Helper()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "karmada-impersonator"},
		Rules:      []rbacv1.PolicyRule{{Verbs: []string{"impersonate"}, APIGroups: []string{""}, Resources: []string{"users"}, ResourceNames: []string{user}}},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "karmada-impersonator"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "karmada-cluster", Name: "karmada-impersonator"}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
	}
	for _, o := range []client.Object{role, binding} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Delete(context.Background(), o) })
	}
}

// resourceVersions of everything a join writes, in one string.
func resourceVersions(ctx context.Context, t *testing.T, p join.Pair) string {
	t.Helper()
	out := getCluster(ctx, t, p.Federation, p.Cluster).GetResourceVersion()
	for _, name := range []string{p.Cluster, p.Cluster + "-impersonator"} {
		out += "," + fedSecret(ctx, t, p, name).ResourceVersion
	}
	return out
}

// TestRotation replaces the control plane's token: the new one is in place
// before the old one is revoked, a watch opened with the old one keeps
// delivering events, and with a grace period the old one keeps working.
func TestRotation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := pair(t, "edge-rot", join.ControlPlaneID("dc1", "default", "rot"))
	joinUntilDone(ctx, t, p)
	ca := fedSecret(ctx, t, p, "edge-rot").Data["caBundle"]
	tokenA := fedSecret(ctx, t, p, "edge-rot").Data["token"]
	clientA := kubernetes.NewForConfigOrDie(tokenConfig(tokenA, ca))

	// A long-running watch through the stored credentials.
	w, err := clientA.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	tokenB := rotate(ctx, t, &p, tokenA)
	if string(tokenB) == string(tokenA) {
		t.Fatal("the control plane holds the same token after a rotation")
	}
	if _, err := kubernetes.NewForConfigOrDie(tokenConfig(tokenB, ca)).CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("the new token: %v", err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := clientA.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return apierrors.IsUnauthorized(err), nil
	}); err != nil {
		t.Error("the replaced token still authenticates new requests")
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "after-rotation"}}
	if err := p.Member.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.ResultChan():
		if got, ok := ev.Object.(*corev1.ConfigMap); !ok || got.Name != cm.Name {
			t.Errorf("the watch opened before the rotation delivered %v %T", ev.Type, ev.Object)
		}
	case <-time.After(20 * time.Second):
		t.Error("the watch opened before the rotation delivered nothing after it")
	}

	// With a grace period, the replaced token keeps working until it ends.
	p.RevokeAfter = time.Hour
	tokenC := rotate(ctx, t, &p, tokenB)
	if string(tokenC) == string(tokenB) {
		t.Fatal("no new token on the second rotation")
	}
	if _, err := kubernetes.NewForConfigOrDie(tokenConfig(tokenB, ca)).CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("the replaced token within its grace period: %v", err)
	}
	unjoin(ctx, t, p)
	list := &corev1.SecretList{}
	if err := p.Member.List(ctx, list, client.InNamespace("karmada-cluster"), client.MatchingLabels{marinav1alpha1.LabelMemberCluster: "edge-rot"}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if len(list.Items) > 0 {
		t.Errorf("%d token Secrets left after unjoin", len(list.Items))
	}
}

// rotate joins with tokens due for rotation until the control plane holds
// a token other than old: the first pass makes the new token Secret, a
// later one, once the member's token controller filled it, hands it over.
func rotate(ctx context.Context, t *testing.T, p *join.Pair, old []byte) []byte {
	t.Helper()
	p.RotateAfter = time.Nanosecond
	defer func() { p.RotateAfter = 0 }()
	var got []byte
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if _, err := join.Join(ctx, *p); err != nil {
			return false, err
		}
		got = fedSecret(ctx, t, *p, p.Cluster).Data["token"]
		return string(got) != string(old), nil
	})
	if err != nil {
		t.Fatalf("rotation: %v", err)
	}
	return got
}

// TestRegistrationUserHasNoMore: the identity joins go through (the one a
// Marina control plane gives the register operator) reads no Secret
// outside karmada-cluster, makes no namespace and grants nothing.
func TestRegistrationUserHasNoMore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := clientOf(t, federationUser)
	for _, tc := range []struct {
		what string
		do   func() error
	}{
		{"list Secrets in kube-system", func() error {
			return c.List(ctx, &corev1.SecretList{}, client.InNamespace(metav1.NamespaceSystem))
		}},
		{"list Secrets everywhere", func() error { return c.List(ctx, &corev1.SecretList{}) }},
		{"create a namespace", func() error {
			return c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "not-allowed"}})
		}},
		{"create a ClusterRoleBinding", func() error {
			return c.Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "escalate"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
				Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "marina:register-operator"}},
			})
		}},
	} {
		if err := tc.do(); !apierrors.IsForbidden(err) {
			t.Errorf("%s: %v, want Forbidden", tc.what, err)
		}
	}
}
