// Package operator is the process bootstrap every Marina operator binary
// shares: flags, logging, the controller-runtime manager with metrics, health
// probes and leader election, and a clean exit on SIGTERM. An operator's main
// only names itself and registers its reconcilers:
//
//	func main() {
//		operator.Main("marina-example", func(mgr ctrl.Manager, opts operator.Options) error {
//			return (&example.Reconciler{DataCenter: opts.DataCenter}).SetupWithManager(mgr)
//		})
//	}
package operator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/version"
)

// SetupFunc registers an operator's reconcilers, webhooks and other
// runnables with the manager before it starts.
type SetupFunc func(mgr ctrl.Manager, opts Options) error

// ManagerOption adjusts the manager's options before it is created, such as
// to limit what its cache holds.
type ManagerOption func(*ctrl.Options)

// Exit codes of Main.
const (
	// ExitFailure means the operator could not start or stopped on an error.
	ExitFailure = 1
	// ExitUsage means the flags or environment were wrong; nothing started.
	ExitUsage = 2
)

// Main runs the operator called name until SIGTERM or SIGINT, then exits the
// process: 0 after a clean shutdown, ExitUsage when the flags are wrong and
// ExitFailure otherwise, each failure with a one-line message on stderr.
func Main(name string, setup SetupFunc, mopts ...ManagerOption) {
	// controller-runtime registers --kubeconfig on flag.CommandLine when it
	// is imported, so the operator's flags go there too rather than on a new
	// set that would lack it. Output is held back so that a bad flag prints
	// one line, not the flag package's line followed by the whole usage.
	fs := flag.CommandLine
	fs.Init(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	opts, err := ParseOptions(name, fs, os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(os.Stderr)
		fmt.Fprintf(os.Stderr, "Usage of %s:\n", name)
		fs.PrintDefaults()
		os.Exit(0)
	}
	if err != nil {
		fail(name, ExitUsage, err)
	}

	log := zap.New(zap.UseFlagOptions(&opts.Zap)).WithValues("operator", name)
	ctrl.SetLogger(log)
	// client-go (leader election among others) logs through klog; route it
	// through the same logger so every line is structured the same way.
	klog.SetLogger(log)

	cfg, err := ctrl.GetConfig()
	if err != nil {
		fail(name, ExitFailure, fmt.Errorf("load kubeconfig (set --kubeconfig or run in a cluster): %w", err))
	}
	if err := Run(ctrl.SetupSignalHandler(), cfg, opts, setup, mopts...); err != nil {
		fail(name, ExitFailure, err)
	}
}

// fail ends the process with one plain line naming the operator, rather
// than a log entry whose stack trace would only ever point at Main.
func fail(name string, code int, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	os.Exit(code)
}

// Run builds the manager for opts against the API server at cfg, lets setup
// register the operator's reconcilers and runs it until ctx is done. It
// returns nil after a clean shutdown, having handed over leadership. The
// process must exit soon after Run returns: with the Lease released, a
// reconciler that outlived the graceful shutdown timeout could otherwise run
// next to the new leader's.
func Run(ctx context.Context, cfg *rest.Config, opts Options, setup SetupFunc, mopts ...ManagerOption) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	if setup == nil {
		return errors.New("no setup function: the operator registers nothing")
	}
	log := ctrl.Log.WithName("setup")
	log.Info("Starting operator",
		"version", version.Version, "commit", version.Commit, "dataCenter", opts.DataCenter,
		"leaderElect", opts.LeaderElect, "leaderElectionNamespace", opts.LeaderElectionNamespace,
		"leaderElectionID", opts.LeaderElectionID)

	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = float32(opts.KubeAPIQPS), opts.KubeAPIBurst

	scheme, err := newScheme()
	if err != nil {
		return err
	}
	if err := registerBuildInfo(opts); err != nil {
		return err
	}

	timeout := opts.GracefulShutdownTimeout
	metricsOpts := metricsserver.Options{BindAddress: opts.MetricsBindAddress}
	if opts.MetricsSecure {
		// The API server decides who may read metrics, as it does for
		// Kubernetes' own components: the operators' metrics name tenants'
		// control planes and members.
		metricsOpts.SecureServing = true
		metricsOpts.CertDir = opts.MetricsCertDir
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgrOpts := ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  opts.HealthProbeBindAddress,
		LeaderElection:          opts.LeaderElect,
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		LeaderElectionID:        opts.LeaderElectionID,
		LeaseDuration:           &opts.LeaseDuration,
		RenewDeadline:           &opts.RenewDeadline,
		RetryPeriod:             &opts.RetryPeriod,
		LeaderElectionLabels: map[string]string{
			"app.kubernetes.io/name":    opts.Name,
			"app.kubernetes.io/part-of": "marina",
		},
		// Release the Lease when stopping on purpose so the next replica
		// takes over at once instead of after the lease duration; see Run's
		// doc for why that is safe.
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       &timeout,
	}
	for _, o := range mopts {
		o(&mgrOpts)
	}
	mgr, err := ctrl.NewManager(cfg, mgrOpts)
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("add healthz check: %w", err)
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("add readyz check: %w", err)
	}
	if err := setup(mgr, opts); err != nil {
		return fmt.Errorf("set up %s: %w", opts.Name, err)
	}

	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("run manager: %w", err)
	}
	log.Info("Operator stopped")
	return nil
}

// newScheme holds every kind a Marina operator reads or writes.
func newScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("add Kubernetes kinds to scheme: %w", err)
	}
	if err := marinav1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("add %s kinds to scheme: %w", marinav1alpha1.GroupVersion, err)
	}
	return scheme, nil
}

// buildInfo lets dashboards and alerts tell which version runs where, by
// joining on its labels; its value is always 1.
var buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "marina_build_info",
	Help: "Always 1; labelled with the operator, its version and the data center it serves.",
}, []string{"operator", "version", "data_center"})

// registerBuildInfo publishes buildInfo on controller-runtime's registry,
// which its metrics server serves. Registering twice (Run called again in one
// process) is not an error.
func registerBuildInfo(opts Options) error {
	if err := metrics.Registry.Register(buildInfo); err != nil {
		if !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return fmt.Errorf("register marina_build_info: %w", err)
		}
	}
	buildInfo.WithLabelValues(opts.Name, version.Version, opts.DataCenter).Set(1)
	return nil
}
