// Command cert-manager-controller runs cert-manager's real controllers for
// CA and SelfSigned Issuers and ClusterIssuers, built from the pkg/ packages of the
// cert-manager release pinned in this module's go.mod.
//
// cert-manager's own main lives in its cmd/controller module, which the Go
// module proxy refuses; this file stands in for it. It does what
// cmd/controller/app does for the controllers Marina needs, with the same
// defaults, and leaves out what a test or the local environment does not:
// leader election, the metrics, healthz and pprof listeners (nothing binds a
// port), ACME, Vault, Venafi, the ingress and Gateway shims.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"

	// Controllers register themselves with controllerpkg in init(). The
	// approver matters: without it no CertificateRequest is approved and
	// nothing is ever signed.
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	// The CA issuer backend the issuers controllers use to check a CA
	// Secret and mark the (Cluster)Issuer Ready.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	// SelfSigned issuers make the control plane's own CAs (front proxy,
	// etcd, CSR signer), as in cert-manager's CA bootstrap recipe.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster to run in (required)")
	clusterResourceNamespace := flag.String("cluster-resource-namespace", "cert-manager",
		"namespace holding the Secrets that ClusterIssuers refer to")
	workers := flag.Int("concurrent-workers", 5, "workers per controller (cert-manager's default)")
	// Accepted so that callers may pass cert-manager's own flag; this binary
	// never runs leader election: one controller runs per cluster.
	leaderElect := flag.Bool("leader-elect", false, "must be false: leader election is not supported")
	klog.InitFlags(flag.CommandLine) // --v and friends; klog writes to stderr.
	flag.Parse()

	if *kubeconfig == "" || *leaderElect {
		fmt.Fprintln(os.Stderr, "usage: cert-manager-controller --kubeconfig FILE [--cluster-resource-namespace NS] [--v N] (--leader-elect is not supported)")
		os.Exit(2)
	}
	klog.EnableContextualLogging(true)
	defer klog.Flush()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, klog.Background(), "cert-manager")

	if err := run(ctx, *kubeconfig, *clusterResourceNamespace, *workers); err != nil {
		klog.ErrorS(err, "cert-manager controllers failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Info("cert-manager controllers stopped")
}

func run(ctx context.Context, kubeconfig, clusterResourceNamespace string, workers int) error {
	log := logf.FromContext(ctx)

	// The values cmd/controller defaults to (internal/apis/config/controller/
	// v1alpha1/defaults.go), except the ClusterIssuer namespace, which is
	// ours to choose.
	factory, err := controllerpkg.NewContextFactory(ctx, controllerpkg.ContextOptions{
		Kubeconfig:         kubeconfig,
		KubernetesAPIQPS:   20,
		KubernetesAPIBurst: 50,
		IssuerOptions: controllerpkg.IssuerOptions{
			ClusterResourceNamespace: clusterResourceNamespace,
			// No cloud metadata services here; only matters to ACME.
			ClusterIssuerAmbientCredentials: false,
		},
		CertificateOptions: controllerpkg.CertificateOptions{
			// Without these the request manager backs off for zero time
			// and retries a failing request in a hot loop.
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
			CopiedAnnotationPrefixes:                 []string{"*", "-kubectl.kubernetes.io/", "-fluxcd.io/", "-argocd.argoproj.io/"},
		},
		SchedulerOptions: controllerpkg.SchedulerOptions{MaxConcurrentChallenges: 60},
		// Gateway API off: its CRDs are not installed and no shim runs.
		ConfigOptions: controllerpkg.ConfigOptions{EnableGatewayAPI: false},
	})
	if err != nil {
		return fmt.Errorf("build controller context: %w", err)
	}
	// The base context shares its informer factories with every context the
	// controllers build from the factory.
	base, err := factory.Build()
	if err != nil {
		return fmt.Errorf("build controller context: %w", err)
	}

	names := make([]string, 0, len(controllerpkg.Known()))
	for name := range controllerpkg.Known() {
		names = append(names, name)
	}
	sort.Strings(names)

	// Build every controller before starting the informers: building is
	// what registers the informers a controller needs, and a factory only
	// starts the informers it knows about when Start is called.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(names))
	for _, name := range names {
		c, err := controllerpkg.Known()[name](factory)
		if err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("build controller %s: %w", name, err)
		}
		log.Info("starting controller", "controller", name)
		wg.Go(func() {
			if err := c.Run(workers, ctx); err != nil {
				errs <- fmt.Errorf("controller %s: %w", name, err)
				cancel() // one controller down means cert-manager is down
			}
		})
	}
	base.SharedInformerFactory.Start(ctx.Done())
	base.KubeSharedInformerFactory.Start(ctx.Done())
	base.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())

	<-ctx.Done()
	log.Info("shutting down")
	wg.Wait()
	base.SharedInformerFactory.Shutdown()
	base.KubeSharedInformerFactory.Shutdown()
	base.HTTP01ResourceMetadataInformersFactory.Shutdown()
	select {
	case err := <-errs:
		return err
	default:
		return nil // stopped by a signal
	}
}
