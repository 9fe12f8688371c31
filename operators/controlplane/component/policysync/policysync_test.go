package policysync_test

import (
	"context"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/controlplane/component/policysync"
)

func TestReservedNamespace(t *testing.T) {
	for ns, want := range map[string]bool{
		"default": true, "kube-system": true, "kube-public": true, "karmada-system": true,
		"karmada-cluster": true, "karmada-es-member-1": true,
		"tenant-a": false, "karmada": false, "kubeflow": false, "": false,
	} {
		if got := policysync.ReservedNamespace(ns); got != want {
			t.Errorf("ReservedNamespace(%q) = %v, want %v", ns, got, want)
		}
	}
}

// TestScope grants the sync operator's user what a control plane grants it
// in a real API server and checks the admission policy: RBAC lets it write
// Roles and Namespaces anywhere, the policy keeps it out of the engine's
// and Kubernetes' namespaces and off what Marina's operators made, and
// says so; an administrator is not held.
func TestScope(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx := t.Context()
	cfg, _, err := env.SyncUser(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sync, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	admin := env.Client
	marinas := map[string]string{"app.kubernetes.io/managed-by": "marina-controlplane"}
	// What a platform team may add: empty ClusterRoles, so that a
	// cluster-scoped object other than a Namespace is tried too; and
	// ServiceAccount tokens, a subresource.
	for _, o := range []client.Object{
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "sync-makes-clusterroles"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"}, Verbs: []string{"create"}},
			{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"}, Verbs: []string{"create"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "sync-makes-clusterroles"},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: policysync.User}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "sync-makes-clusterroles"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant-a"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "karmada-es-member-1"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "karmada-cluster"}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-a", Name: "marinas", Labels: marinas}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-a", Name: "builder"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "controller"}},
	} {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	role := func(ns, name string, labels map[string]string) *rbacv1.Role {
		return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
	}

	// The policy takes effect once the API server has loaded it.
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		err := sync.Create(ctx, role("kube-system", "probe", nil))
		if err == nil {
			return false, admin.Delete(ctx, role("kube-system", "probe", nil))
		}
		return apierrors.IsForbidden(err) || apierrors.IsInvalid(err), nil
	})
	if err != nil {
		t.Fatalf("the admission policy never refused a Role in kube-system: %v", err)
	}

	// relabel sets the labels of Role name in tenant-a.
	relabel := func(name string, labels map[string]string) func(context.Context, client.Client) error {
		return func(ctx context.Context, c client.Client) error {
			r := &rbacv1.Role{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "tenant-a", Name: name}, r); err != nil {
				return err
			}
			r.Labels = labels
			return c.Update(ctx, r)
		}
	}
	token := func(ns, sa string) func(context.Context, client.Client) error {
		return func(ctx context.Context, c client.Client) error {
			return c.SubResource("token").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}},
				&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}})
		}
	}
	create := func(o client.Object) func(context.Context, client.Client) error {
		return func(ctx context.Context, c client.Client) error { return c.Create(ctx, o) }
	}
	remove := func(o client.Object) func(context.Context, client.Client) error {
		return func(ctx context.Context, c client.Client) error { return c.Delete(ctx, o) }
	}
	for _, tc := range []struct {
		name string
		do   func(context.Context, client.Client) error
		// refused is a part of the message, or "" where the write
		// passes.
		refused string
	}{
		{"a Role in a tenant namespace", create(role("tenant-a", "tenants", nil)), ""},
		{"a Namespace of a tenant", create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant-b"}}), ""},
		{"a cluster-wide object a platform team let it write", create(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "tenant-viewers"}}), ""},
		{"a token of a tenant's ServiceAccount", token("tenant-a", "builder"), ""},
		{"a token of a ServiceAccount in kube-system", token("kube-system", "controller"), "may not write in namespace kube-system"},
		{"a Namespace named by the API server into a reserved prefix", create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kube-"}}), "may not write in namespace kube-"},
		{"a Role in kube-system", create(role("kube-system", "x", nil)), "may not write in namespace kube-system"},
		{"a Role in karmada-cluster, where the members' credentials are", create(role("karmada-cluster", "x", nil)), "may not write in namespace karmada-cluster"},
		{"the Namespace of a member's Works", remove(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "karmada-es-member-1"}}), "may not write in namespace karmada-es-member-1"},
		{"a Role labelled as Marina's", create(role("tenant-a", "fake", marinas)), "may not write objects labelled app.kubernetes.io/managed-by"},
		{"relabelling its own Role as Marina's", relabel("tenants", marinas), "may not write objects labelled app.kubernetes.io/managed-by"},
		{"a change to a Role Marina's operators made", relabel("marinas", nil), "may not change or delete what Marina's operators made"},
		{"deleting a Role Marina's operators made", remove(role("tenant-a", "marinas", nil)), "may not change or delete what Marina's operators made"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do(ctx, sync)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused == "":
			case err == nil:
				t.Fatal("went through")
			case !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err), !strings.Contains(err.Error(), tc.refused):
				t.Fatalf("refused with %v, want a refusal saying %q", err, tc.refused)
			}
		})
	}
	t.Run("an administrator is not held", func(t *testing.T) {
		if err := admin.Create(ctx, role("kube-system", "admins", nil)); err != nil {
			t.Fatal(err)
		}
	})
}
