package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/kubeconfig"
	"github.com/marina-platform/marina/internal/localenv"
)

// kmsBench holds the encryption figures of the report.
type kmsBench struct {
	ready                 time.Duration // create → Ready of an encrypted control plane
	secrets, configMaps   float64       // writes per second
	workers, payloadBytes int
	window                time.Duration
}

// benchEncryption measures write throughput on one control plane whose
// Secrets are encrypted through the kms-vault sidecar: Secrets (KMS v2)
// against ConfigMaps of the same size (identity, not encrypted), written by
// the same clients to the same API server in turn.
func benchEncryption(ctx context.Context, env *localenv.Env) (*kmsBench, error) {
	dc := env.DataCenters()[0]
	c, err := mgmtClient(dc)
	if err != nil {
		return nil, err
	}
	const ns = "marina-bench-kms"
	token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vault-token"}, StringData: map[string]string{"token": localenv.VaultRootToken}}
	cleanup, err := benchNamespace(ctx, env, c, ns, token)
	defer cleanup()
	if err != nil {
		return nil, err
	}
	v := env.Vault()
	ready, err := provision(ctx, env, c, dc, ns, []string{"kms"}, func(cp *marinav1alpha1.ControlPlane) {
		cp.Spec.Encryption = &marinav1alpha1.EncryptionSpec{KMS: marinav1alpha1.KMSSpec{Vault: marinav1alpha1.VaultKMS{
			Address: v.URL(), TransitMount: v.Mount(), KeyName: v.Key(),
			Auth: marinav1alpha1.VaultAuth{Token: &marinav1alpha1.VaultTokenAuth{SecretRef: marinav1alpha1.SecretKeyReference{Name: "vault-token"}}},
		}}}
	})
	defer func() { _ = deleteAll(context.Background(), c, ns) }()
	if err != nil {
		return nil, err
	}
	cp := &marinav1alpha1.ControlPlane{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "kms"}, cp); err != nil {
		return nil, err
	}
	b := &kmsBench{ready: ready[0], workers: 8, payloadBytes: 1024, window: 20 * time.Second}
	fed, err := federationClient(ctx, c, cp)
	if err != nil {
		return nil, err
	}
	payload := strings.Repeat("x", b.payloadBytes)
	// A warm-up, so that neither kind pays for the first data key or for
	// new connections.
	if _, err := writeFor(ctx, fed, b.workers, 3*time.Second, "warm", func(name string) client.Object {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Data: map[string]string{"v": payload}}
	}); err != nil {
		return nil, err
	}
	secret := func(name string) client.Object {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, StringData: map[string]string{"v": payload}}
	}
	configMap := func(name string) client.Object {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Data: map[string]string{"v": payload}}
	}
	// Rounds in the order Secret, ConfigMap, ConfigMap, Secret, so that a
	// drift (etcd growing, a neighbour's load) weighs on both kinds alike.
	for i, kind := range []string{"s", "c", "c", "s"} {
		obj := secret
		if kind == "c" {
			obj = configMap
		}
		rate, err := writeFor(ctx, fed, b.workers, b.window/2, fmt.Sprintf("%s%d", kind, i), obj)
		if err != nil {
			return nil, err
		}
		if kind == "s" {
			b.secrets += rate / 2
		} else {
			b.configMaps += rate / 2
		}
	}
	return b, nil
}

// writeFor creates objects from workers goroutines for the window and
// returns the creations per second.
func writeFor(ctx context.Context, c client.Client, workers int, window time.Duration, prefix string, obj func(name string) client.Object) (float64, error) {
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(window)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				if err := c.Create(ctx, obj(fmt.Sprintf("%s-%d-%d", prefix, w, i))); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds(), firstErr
}

// federationClient reaches a control plane's API server from the host with
// its admin kubeconfig, through an API server pod's IP (the Service's name
// resolves only inside the cluster) with the name the certificate carries.
func federationClient(ctx context.Context, c client.Client, cp *marinav1alpha1.ControlPlane) (client.Client, error) {
	ref := cp.Status.AdminKubeconfigSecretRef
	if ref == nil {
		return nil, fmt.Errorf("%s: no admin kubeconfig yet", cp.Name)
	}
	sec := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: ref.Name}, sec); err != nil {
		return nil, err
	}
	cfg, err := kubeconfig.RESTConfig(sec.Data[ref.Key])
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(strings.TrimPrefix(cfg.Host, "https://"))
	if err != nil {
		return nil, err
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(cp.Namespace), client.MatchingLabels{
		"app.kubernetes.io/instance": cp.Name, "app.kubernetes.io/component": "apiserver",
	}); err != nil || len(pods.Items) == 0 || pods.Items[0].Status.PodIP == "" {
		return nil, fmt.Errorf("%s: no API server pod with an IP (%v)", cp.Name, err)
	}
	cfg.Host = "https://" + net.JoinHostPort(pods.Items[0].Status.PodIP, port)
	cfg.TLSClientConfig.ServerName = host
	cfg.QPS, cfg.Burst = 1000, 1000
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	return client.New(cfg, client.Options{Scheme: scheme})
}

func (b *kmsBench) report(w *strings.Builder) {
	fmt.Fprintf(w, "\n## Encryption at rest (dc1, kms-vault sidecar, Vault transit)\n\n")
	fmt.Fprintf(w, "| measure | value | target |\n|---|---|---|\n")
	fmt.Fprintf(w, "| encrypted control plane, create → Ready | %s | |\n", b.ready.Round(100*time.Millisecond))
	fmt.Fprintf(w, "| Secret writes per second (KMS v2) | %.0f | |\n", b.secrets)
	fmt.Fprintf(w, "| ConfigMap writes per second (identity), same API server | %.0f | |\n", b.configMaps)
	fmt.Fprintf(w, "| KMS throughput as a share of identity | %.0f %% | ≥ 50 %% |\n", 100*b.secrets/b.configMaps)
	fmt.Fprintf(w, "\n%d clients create %d-byte objects for %s per kind on the same control plane, in rounds of half that (Secrets, ConfigMaps, ConfigMaps, Secrets) so that drift weighs on both alike; the rates are the rounds' means. Secrets and ConfigMaps of the same size cost the API server alike apart from the encryption. The plugin's own latency (Encrypt and Decrypt through its socket to Vault, p50 and p99) is `BenchmarkPlugin` in `cmd/kms-vault`; see bench/kms-plugin.txt.\n",
		b.workers, b.payloadBytes, b.window)
}
