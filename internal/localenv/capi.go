package localenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marina-platform/marina/internal/localenv/gomod"
)

// ClusterAPIVersion is the Cluster API release whose CRDs every management
// cluster gets, fetched through the Go module proxy.
const ClusterAPIVersion = "v1.14.2"

// MembersNamespace holds the Cluster API Clusters and kubeconfig Secrets of
// the member clusters in each management cluster.
const MembersNamespace = "marina-members"

// ClusterAPICRDs returns the folder of Cluster API's core CRDs in the module
// cache, downloading the module when needed.
func ClusterAPICRDs(ctx context.Context) (string, error) {
	dir, err := gomod.Download(ctx, "sigs.k8s.io/cluster-api", ClusterAPIVersion)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "core", "config", "crd", "bases"), nil
}

// registerMember does what an infrastructure provider does once a cluster
// exists: a Cluster API Cluster with its endpoint and status, and the
// <name>-kubeconfig Secret (key value) that Marina's register operator reads.
func registerMember(ctx context.Context, mgmt client.Client, dcName string, m Member) error {
	kubeconfig, err := os.ReadFile(m.Cluster.AdminKubeconfig())
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: MembersNamespace}}
	if err := mgmt.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}

	labels := map[string]string{LabelDataCenter: dcName, "cluster.x-k8s.io/cluster-name": m.Cluster.Name}
	c := &unstructured.Unstructured{}
	c.SetAPIVersion("cluster.x-k8s.io/v1beta2")
	c.SetKind("Cluster")
	c.SetNamespace(MembersNamespace)
	c.SetName(m.Cluster.Name)
	c.SetLabels(labels)
	_ = unstructured.SetNestedMap(c.Object, map[string]any{
		"host": m.Cluster.IP.String(),
		"port": int64(m.Cluster.APIPort),
	}, "spec", "controlPlaneEndpoint")
	if err := mgmt.Patch(ctx, c, client.Apply, client.FieldOwner("marina-dev"), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply Cluster %s: %w", m.Cluster.Name, err)
	}

	now := time.Now().UTC().Format(time.RFC3339)
	condition := func(t string) map[string]any {
		return map[string]any{"type": t, "status": "True", "reason": t, "lastTransitionTime": now, "message": ""}
	}
	status := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
		"metadata": map[string]any{"name": m.Cluster.Name, "namespace": MembersNamespace},
		"status": map[string]any{
			"phase":          "Provisioned",
			"initialization": map[string]any{"infrastructureProvisioned": true, "controlPlaneInitialized": true},
			"conditions": []any{
				condition("Available"), condition("ControlPlaneInitialized"), condition("InfrastructureReady"),
			},
		},
	}}
	if err := mgmt.Status().Patch(ctx, status, client.Apply, client.FieldOwner("marina-dev"), client.ForceOwnership); err != nil {
		return fmt.Errorf("set status of Cluster %s: %w", m.Cluster.Name, err)
	}

	secret := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: m.Cluster.Name + "-kubeconfig", Namespace: MembersNamespace, Labels: labels},
		Type:       "cluster.x-k8s.io/secret",
		Data:       map[string][]byte{"value": kubeconfig},
	}
	if err := mgmt.Patch(ctx, secret, client.Apply, client.FieldOwner("marina-dev"), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply Secret %s: %w", secret.Name, err)
	}
	return nil
}

// LabelDataCenter marks the local environment's objects with their data
// center, as Marina's own label does.
const LabelDataCenter = "marina.dev/data-center"

func controllerClient(kubeconfig string) (client.Client, error) {
	return controllerClientWith(kubeconfig, nil)
}

// controllerClientWith is a client of the kinds in scheme (client-go's
// when nil).
func controllerClientWith(kubeconfig string, scheme *runtime.Scheme) (client.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 10 * time.Second
	return client.New(cfg, client.Options{Scheme: scheme})
}

func kubectlApply(ctx context.Context, kubectl, kubeconfig, path string) error {
	cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "apply", "--server-side", "--field-manager=marina-dev", "-f", path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl apply -f %s: %w: %s", path, err, out.String())
	}
	return nil
}

// kubectlWaitEstablished waits until the CRDs in path are served, so that
// objects of their kinds can be created right after.
func kubectlWaitEstablished(ctx context.Context, kubectl, kubeconfig, path string) error {
	cmd := exec.CommandContext(ctx, kubectl, "--kubeconfig", kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", "-f", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("CRDs of %s not established: %w: %s", path, err, out)
	}
	return nil
}

func memberPorts(j int) (api, etcd int) { return 6443 + j, 2379 + 2*j }

// RegisterMember makes a member's Cluster API Cluster and kubeconfig
// Secret again, as `up` does, for tests that delete them.
func (e *Env) RegisterMember(ctx context.Context, dc DataCenter, m Member) error {
	mgmt, err := controllerClient(dc.Kubeconfig())
	if err != nil {
		return err
	}
	return registerMember(ctx, mgmt, dc.Name, m)
}
