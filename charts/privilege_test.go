package charts_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the permission tables in charts/marina/README.md from what kubectl auth can-i --list reports")

// tenantNamespace stands for any namespace a ControlPlane may live in.
const tenantNamespace = "tenant-a"

// TestLeastPrivilege installs the chart with every operator on and asks the
// API server what each operator's ServiceAccount may do, with `kubectl auth
// can-i --list` as that ServiceAccount: in a tenant's namespace (the
// cluster-wide rules) and what the release namespace adds. The reviewed
// expectation is the table in charts/marina/README.md, so a grant added
// or widened in an operator's RBAC markers fails here until the README
// shows it (`go test ./charts -run TestLeastPrivilege -update` rewrites it
// for review). Then it checks, as marina-controlplane, what RBAC cannot
// express and the chart's ValidatingAdmissionPolicy enforces.
func TestLeastPrivilege(t *testing.T) {
	h := newHelm(t)
	kubectl := filepath.Join(os.Getenv(testenv.AssetsEnv), "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Fatalf("no kubectl in %s (run `make test-binaries`): %v", testenv.AssetsEnv, err)
	}
	env, kubeconfig := startAPIServer(t)
	ctx := t.Context()
	args := append([]string{"install", release, chartDir(t), "--kubeconfig", kubeconfig, "--namespace", namespace, "--create-namespace"}, localEnvValues...)
	if _, err := h.run(append(args, allOperators...)...); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{tenantNamespace, "kube-system"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); client.IgnoreAlreadyExists(err) != nil {
			t.Fatal(err)
		}
	}

	t.Run("can-i", func(t *testing.T) {
		readme := filepath.Join(chartDir(t), "README.md")
		data, err := os.ReadFile(readme)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(data)
		for _, op := range operators {
			sa := serviceAccountUser("marina-" + op)
			tenant := canIList(t, kubectl, kubeconfig, sa, tenantNamespace)
			own := canIList(t, kubectl, kubeconfig, sa, namespace)
			got := tenant + "\n" + onlyIn(own, tenant)
			want, ok := permissionTable(doc, op)
			switch {
			case *update:
				doc, err = setPermissionTable(doc, op, got)
				if err != nil {
					t.Fatal(err)
				}
			case !ok:
				t.Errorf("%s has no permission table of %s between <!-- can-i %s --> and <!-- /can-i --> (run with -update)", readme, op, op)
			case want != got:
				t.Errorf("what marina-%s may do differs from the reviewed table in %s; review the change and run with -update\n got:\n%s\nwant:\n%s", op, readme, got, want)
			}
		}
		// A peer's replicator: only cluster-wide rules, so one table.
		got := canIList(t, kubectl, kubeconfig, serviceAccountUser("marina-peer-dc2"), tenantNamespace)
		want, ok := permissionTable(doc, "peer")
		switch {
		case *update:
			doc, err = setPermissionTable(doc, "peer", got)
			if err != nil {
				t.Fatal(err)
			}
		case !ok:
			t.Errorf("%s has no permission table of the peer replicator between <!-- can-i peer --> and <!-- /can-i --> (run with -update)", readme)
		case want != got:
			t.Errorf("what marina-peer-dc2 may do differs from the reviewed table in %s; review the change and run with -update\n got:\n%s\nwant:\n%s", readme, got, want)
		}
		if *update {
			if err := os.WriteFile(readme, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("admission policy", func(t *testing.T) {
		checkControlPlaneScope(t, env)
	})
	t.Run("replicas", func(t *testing.T) {
		checkReplicas(t, env)
	})
}

func serviceAccountUser(name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// canIList is `kubectl auth can-i --list` as user in namespace: the rules
// the API server's authorizer reports, as the table kubectl prints.
func canIList(t *testing.T, kubectl, kubeconfig, user, ns string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "auth", "can-i", "--list",
		"--as", user, "--namespace", ns).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl auth can-i --list --as %s -n %s: %v\n%s", user, ns, err, out)
	}
	return string(out)
}

// onlyIn keeps the header of table a and its rows that table b lacks.
func onlyIn(a, b string) string {
	rows := strings.SplitAfter(strings.TrimSpace(a), "\n")
	have := strings.Split(b, "\n")
	out := rows[0]
	for _, r := range rows[1:] {
		if !slices.Contains(have, strings.TrimSuffix(r, "\n")) {
			out += r
		}
	}
	return strings.TrimSuffix(out, "\n") + "\n"
}

func permissionTableRE(op string) *regexp.Regexp {
	return regexp.MustCompile("(?s)<!-- can-i " + op + " -->\n```text\n(.*?)```\n<!-- /can-i -->")
}

func permissionTable(doc, op string) (string, bool) {
	m := permissionTableRE(op).FindStringSubmatch(doc)
	if m == nil {
		return "", false
	}
	return m[1], true
}

func setPermissionTable(doc, op, table string) (string, error) {
	re := permissionTableRE(op)
	if !re.MatchString(doc) {
		return "", fmt.Errorf("README has no <!-- can-i %s --> block to rewrite; add an empty one where the table belongs", op)
	}
	block := "<!-- can-i " + op + " -->\n```text\n" + table + "```\n<!-- /can-i -->"
	return re.ReplaceAllLiteralString(doc, block), nil
}

// checkControlPlaneScope writes as marina-controlplane's ServiceAccount and
// checks the policy lets through what the operator makes and refuses the
// rest, with a message that says why.
func checkControlPlaneScope(t *testing.T, env *testenv.Env) {
	ctx := t.Context()
	admin := env.Client
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: serviceAccountUser("marina-controlplane")}
	op, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	mine := map[string]string{"app.kubernetes.io/managed-by": "marina-controlplane", "app.kubernetes.io/instance": "first"}
	secret := func(ns, name string, labels map[string]string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
	}

	// Somebody else's Secret, in the tenant's namespace, and the KMS
	// plugin's ServiceAccount the operator would have made.
	users := secret(tenantNamespace, "vault-token", map[string]string{"team": "a"})
	for _, o := range []client.Object{users,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNamespace, Name: "first-kms-vault", Labels: mine}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNamespace, Name: "deployer"}},
	} {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	// A new policy takes effect once the API server has loaded it; until
	// then the first write it should refuse goes through.
	probe := secret(tenantNamespace, "probe", nil)
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		err := op.Create(ctx, probe.DeepCopy())
		if err == nil {
			return false, admin.Delete(ctx, probe.DeepCopy())
		}
		return apierrors.IsInvalid(err) || apierrors.IsForbidden(err), nil
	})
	if err != nil {
		t.Fatalf("the admission policy never refused an unlabelled Secret: %v", err)
	}

	token := func(sa string, audiences ...string) error {
		return op.SubResource("token").Create(ctx,
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNamespace, Name: sa}},
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: ptr.To[int64](600)}})
	}
	relabelled := func() error {
		return op.Patch(ctx, users.DeepCopy(), client.RawPatch("application/merge-patch+json",
			[]byte(`{"metadata":{"labels":{"app.kubernetes.io/managed-by":"marina-controlplane"}}}`)))
	}
	for _, tc := range []struct {
		name string
		do   func() error
		// wantErr is a substring of the refusal; empty means allowed.
		wantErr string
	}{
		{"create a Secret labelled as Marina's", func() error { return op.Create(ctx, secret(tenantNamespace, "first-admin-kubeconfig", mine)) }, ""},
		{"change it", func() error {
			return op.Patch(ctx, secret(tenantNamespace, "first-admin-kubeconfig", mine),
				client.RawPatch("application/merge-patch+json", []byte(`{"data":{"k":"dg=="}}`)))
		}, ""},
		{"delete it", func() error { return op.Delete(ctx, secret(tenantNamespace, "first-admin-kubeconfig", nil)) }, ""},
		{"create an unlabelled Secret", func() error { return op.Create(ctx, secret(tenantNamespace, "other", nil)) },
			"may only write objects labelled app.kubernetes.io/managed-by=marina-controlplane"},
		{"change a user's Secret", func() error {
			return op.Patch(ctx, users.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(`{"data":{"token":"dg=="}}`)))
		}, "objects labelled app.kubernetes.io/managed-by=marina-controlplane; secrets tenant-a/vault-token"},
		{"take a user's Secret over by labelling it", relabelled, "may only change or delete objects labelled"},
		{"delete a user's Secret", func() error { return op.Delete(ctx, users.DeepCopy()) }, "may only change or delete objects labelled"},
		{"create a labelled Secret in kube-system", func() error { return op.Create(ctx, secret("kube-system", "first", mine)) },
			"may not write in namespace kube-system"},
		{"create a labelled Secret in the release namespace", func() error { return op.Create(ctx, secret(namespace, "first", mine)) },
			"may not write in namespace " + namespace},
		{"request a token of the KMS plugin's ServiceAccount for Vault", func() error { return token("first-kms-vault", "vault") }, ""},
		{"request a token of it for the API server", func() error { return token("first-kms-vault") },
			"may only request tokens for Vault, with the audiences operators.controlplane.vaultAudiences allows (vault), not "},
		{"request a token of it for another audience", func() error { return token("first-kms-vault", "vault", "https://kubernetes.default.svc") },
			"may only request tokens for Vault"},
		{"request a token of another ServiceAccount", func() error { return token("deployer", "vault") },
			"may only request tokens of the <control plane>-kms-vault ServiceAccounts"},
		{"create a ConfigMap", func() error {
			return op.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNamespace, Name: "first", Labels: mine}})
		}, "cannot create resource \"configmaps\""},
	} {
		t.Run(tc.name, func(t *testing.T) { checkRefusal(t, tc.do(), tc.wantErr) })
	}
	// Nothing refused changed the user's Secret.
	got := &corev1.Secret{}
	if err := admin.Get(ctx, client.ObjectKeyFromObject(users), got); err != nil {
		t.Fatalf("the user's Secret: %v", err)
	}
	if got.Labels["app.kubernetes.io/managed-by"] != "" || len(got.Data) != 0 {
		t.Errorf("the user's Secret changed: labels %v, data keys %d", got.Labels, len(got.Data))
	}
}

// checkReplicas checks the replicas policy: the peer replicator of dc2
// writes only replicas from dc2 and reads no Secret; nobody else changes a
// replica, except the local operators' own work on it.
func checkReplicas(t *testing.T, env *testenv.Env) {
	ctx := t.Context()
	admin := env.Client
	as := func(user string) client.Client {
		cfg := rest.CopyConfig(env.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
		c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	peer, syncOp, register := as(serviceAccountUser("marina-peer-dc2")), as(serviceAccountUser("marina-sync")), as(serviceAccountUser("marina-register"))
	fromDC := func(dc string) map[string]string {
		if dc == "" {
			return nil
		}
		return map[string]string{marinav1alpha1.LabelOriginDataCenter: dc}
	}
	policySet := func(name, origin string) *marinav1alpha1.PolicySet {
		return &marinav1alpha1.PolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNamespace, Name: name, Labels: fromDC(origin),
			Annotations: map[string]string{marinav1alpha1.AnnotationOrigin: "PolicySet tenant-a/" + name + " in data center " + origin}},
			Spec: marinav1alpha1.PolicySetSpec{Sources: []marinav1alpha1.PolicySource{{Bundle: "baseline"}}}}
	}
	member := func(name, origin string) *marinav1alpha1.MemberCluster {
		return &marinav1alpha1.MemberCluster{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNamespace, Name: name, Labels: fromDC(origin)},
			Spec: marinav1alpha1.MemberClusterSpec{KubeconfigSecretRef: &marinav1alpha1.SecretKeyReference{Name: name + "-kubeconfig-replica"}}}
	}
	merge := func(patch string) client.Patch { return client.RawPatch("application/merge-patch+json", []byte(patch)) }
	// update changes a PolicySet of the tenant as c, as the replicator
	// does: read, change, write back.
	update := func(c client.Client, name string, change func(*marinav1alpha1.PolicySet)) error {
		got := &marinav1alpha1.PolicySet{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: tenantNamespace, Name: name}, got); err != nil {
			return err
		}
		change(got)
		return c.Update(ctx, got)
	}

	// The tenant's own objects, made here.
	local := policySet("local", "")
	users := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNamespace, Name: "users-secret"}, StringData: map[string]string{"token": "s3cr3t"}}
	for _, o := range []client.Object{local, users} {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	probe := policySet("probe", "")
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		err := peer.Create(ctx, probe.DeepCopy())
		if err == nil {
			return false, admin.Delete(ctx, probe.DeepCopy())
		}
		return apierrors.IsInvalid(err) || apierrors.IsForbidden(err), nil
	})
	if err != nil {
		t.Fatalf("the replicas policy never refused the peer an unlabelled PolicySet: %v", err)
	}

	for _, tc := range []struct {
		name    string
		do      func() error
		wantErr string
	}{
		{"the peer creates a replica from dc2", func() error { return peer.Create(ctx, policySet("baseline", "dc2")) }, ""},
		{"and changes it", func() error {
			return update(peer, "baseline", func(ps *marinav1alpha1.PolicySet) { ps.Spec.DriftMode = marinav1alpha1.DriftModeReport })
		}, ""},
		{"and writes a member's kubeconfig next to a replica member", func() error {
			if err := peer.Create(ctx, member("m1", "dc2")); err != nil {
				return err
			}
			return peer.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNamespace, Name: "m1-kubeconfig-replica", Labels: fromDC("dc2")}})
		}, ""},
		{"the peer writes a Secret another component reads by name", func() error {
			return peer.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNamespace, Name: "m1-kubeconfig", Labels: fromDC("dc2")}})
		}, "may only write Opaque Secrets named <member>-kubeconfig-replica, not Opaque tenant-a/m1-kubeconfig"},
		{"the peer writes a ServiceAccount token Secret", func() error {
			return peer.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNamespace, Name: "t-kubeconfig-replica", Labels: fromDC("dc2"),
				Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}}, Type: corev1.SecretTypeServiceAccountToken})
		}, "may only write Opaque Secrets named <member>-kubeconfig-replica, not kubernetes.io/service-account-token"},
		{"the peer reads a Secret", func() error { return peer.Get(ctx, client.ObjectKeyFromObject(users), &corev1.Secret{}) }, `cannot get resource "secrets"`},
		{"the peer reads a Secret through an empty patch", func() error { return peer.Patch(ctx, users.DeepCopy(), merge(`{}`)) },
			"may only change or delete its own replicas; secrets tenant-a/users-secret was made here"},
		{"the peer creates a replica claiming another origin", func() error { return peer.Create(ctx, policySet("forged", "dc3")) },
			"may only write replicas labelled marina.dev/origin-data-center=dc2"},
		{"the peer creates an object of this data center's own", func() error { return peer.Create(ctx, policySet("unlabelled", "")) },
			"may only write replicas labelled marina.dev/origin-data-center=dc2"},
		{"the peer changes this data center's own PolicySet", func() error {
			return update(peer, "local", func(ps *marinav1alpha1.PolicySet) { ps.Spec.DriftMode = marinav1alpha1.DriftModeReport })
		}, "may only change or delete its own replicas; policysets tenant-a/local was made here"},
		{"the peer deletes it", func() error { return peer.Delete(ctx, local.DeepCopy()) }, "may only change or delete its own replicas"},
		{"the peer takes it over by labelling it", func() error {
			return update(peer, "local", func(ps *marinav1alpha1.PolicySet) { ps.Labels = fromDC("dc2") })
		}, "may only change or delete its own replicas"},
		{"someone here edits a replica", func() error {
			return admin.Patch(ctx, policySet("baseline", "dc2"), merge(`{"spec":{"driftMode":"Correct"}}`))
		},
			"policysets tenant-a/baseline is a read-only replica of PolicySet tenant-a/baseline in data center dc2: change the original there"},
		{"someone here deletes a replica", func() error { return admin.Delete(ctx, policySet("baseline", "dc2")) }, "is a read-only replica of"},
		{"someone here unlabels a replica to take it over", func() error {
			return admin.Patch(ctx, policySet("baseline", "dc2"), merge(`{"metadata":{"labels":{"marina.dev/origin-data-center":null}}}`))
		}, "is a read-only replica of"},
		{"someone here forges a replica", func() error { return admin.Create(ctx, policySet("forged", "dc2")) }, "is a read-only replica of"},
		{"someone here changes a replica's kubeconfig", func() error {
			return admin.Patch(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNamespace, Name: "m1-kubeconfig-replica"}}, merge(`{"data":{"kubeconfig":"dg=="}}`))
		}, "is a read-only replica of"},
		{"marina-sync holds a replica PolicySet with its finalizer", func() error {
			return syncOp.Patch(ctx, policySet("baseline", "dc2"), merge(`{"metadata":{"finalizers":["marina.dev/policyset"]}}`))
		}, ""},
		{"marina-register joins a replica member here", func() error {
			return register.Patch(ctx, member("m1", "dc2"), merge(`{"spec":{"controlPlanes":[{"name":"fed-a"}]}}`))
		}, ""},
		{"marina-register changes a replica PolicySet", func() error {
			return register.Patch(ctx, policySet("baseline", "dc2"), merge(`{"metadata":{"labels":{"x":"y"}}}`))
		}, "cannot patch resource"},
		{"the peer deletes its replica", func() error {
			if err := syncOp.Patch(ctx, policySet("baseline", "dc2"), merge(`{"metadata":{"finalizers":null}}`)); err != nil {
				return err
			}
			return peer.Delete(ctx, policySet("baseline", "dc2"))
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) { checkRefusal(t, tc.do(), tc.wantErr) })
	}
	got := &marinav1alpha1.PolicySet{}
	if err := admin.Get(ctx, client.ObjectKeyFromObject(local), got); err != nil || got.Labels[marinav1alpha1.LabelOriginDataCenter] != "" || got.Spec.DriftMode == marinav1alpha1.DriftModeReport {
		t.Errorf("this data center's own PolicySet changed: %v, labels %v, drift mode %q", err, got.Labels, got.Spec.DriftMode)
	}
}

// checkRefusal checks a request's outcome: allowed when wantErr is empty,
// else refused with a message containing it.
func checkRefusal(t *testing.T, err error, wantErr string) {
	t.Helper()
	switch {
	case wantErr == "" && err != nil:
		t.Fatalf("refused: %v", err)
	case wantErr != "" && err == nil:
		t.Fatalf("allowed; want it refused with %q", wantErr)
	case wantErr != "" && !strings.Contains(err.Error(), wantErr):
		t.Fatalf("refused with %v; want %q", err, wantErr)
	}
}
