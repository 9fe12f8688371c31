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
		if *update {
			if err := os.WriteFile(readme, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("admission policy", func(t *testing.T) {
		checkControlPlaneScope(t, env)
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
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("allowed; want it refused with %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("refused with %v; want %q", err, tc.wantErr)
			}
		})
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
