package operator

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// Environment variables that supply defaults for flags, so a Deployment can
// set them once (POD_NAMESPACE from the downward API) instead of templating
// every operator's arguments.
const (
	// DataCenterEnv names the data center the operator serves.
	DataCenterEnv = "MARINA_DATA_CENTER"
	// PodNamespaceEnv is the operator's own namespace, where its leader
	// election Lease lives.
	PodNamespaceEnv = "POD_NAMESPACE"
)

// DefaultLeaderElectionNamespace holds the leader election Lease when the
// operator is not told its own namespace.
const DefaultLeaderElectionNamespace = "marina-system"

// Flag names, exported so tests and error messages cannot drift from them.
const (
	FlagMetricsBindAddress      = "metrics-bind-address"
	FlagMetricsSecure           = "metrics-secure"
	FlagMetricsCertDir          = "metrics-cert-dir"
	FlagHealthProbeBindAddress  = "health-probe-bind-address"
	FlagLeaderElect             = "leader-elect"
	FlagLeaderElectionNamespace = "leader-election-namespace"
	FlagLeaderElectionID        = "leader-election-id"
	FlagDataCenter              = "data-center"
	FlagGracefulShutdownTimeout = "graceful-shutdown-timeout"
	FlagLeaderElectionLease     = "leader-election-lease-duration"
	FlagLeaderElectionRenew     = "leader-election-renew-deadline"
	FlagLeaderElectionRetry     = "leader-election-retry-period"
	FlagKubeAPIQPS              = "kube-api-qps"
	FlagKubeAPIBurst            = "kube-api-burst"
)

// Options configure an operator process. Every Marina operator takes the
// same ones, so they are set the same way in every Deployment.
type Options struct {
	// Name is the operator's name, e.g. marina-sync. It is not a flag.
	Name string

	// MetricsBindAddress serves Prometheus metrics; "0" disables them.
	MetricsBindAddress string
	// MetricsSecure serves them over HTTPS, only to clients whose bearer
	// token the API server authenticates and allows GET on /metrics (a
	// TokenReview and a SubjectAccessReview per client, cached).
	MetricsSecure bool
	// MetricsCertDir holds the metrics server's tls.crt and tls.key (from
	// cert-manager, say), reloaded when they change; without them the
	// server makes a self-signed certificate at start.
	MetricsCertDir string
	// HealthProbeBindAddress serves /healthz and /readyz; "0" disables them.
	HealthProbeBindAddress string

	// LeaderElect makes only one replica reconcile at a time.
	LeaderElect bool
	// LeaderElectionNamespace holds the leader election Lease.
	LeaderElectionNamespace string
	// LeaderElectionID names the leader election Lease.
	LeaderElectionID string
	// LeaseDuration, RenewDeadline and RetryPeriod time the leader
	// election. The leader writes its Lease every RetryPeriod, which is
	// most of an idle operator's writes to the API server; the defaults
	// are cert-manager's (60 s, 40 s, 15 s): a crashed leader is replaced
	// within a minute, one write every 15 s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration

	// KubeAPIQPS and KubeAPIBurst bound the operator's requests to the
	// management cluster, as kube-controller-manager's flags of the same
	// names do; the API server's priority and fairness protects it beyond.
	KubeAPIQPS   float64
	KubeAPIBurst int

	// DataCenter is the data center this operator serves. Required: an
	// operator that guessed would act on another data center's objects.
	DataCenter string

	// GracefulShutdownTimeout bounds how long reconcilers get to finish
	// after SIGTERM before the process exits anyway.
	GracefulShutdownTimeout time.Duration

	// Zap configures logging; production JSON unless flags say otherwise.
	Zap zap.Options
}

// DefaultOptions returns the defaults for the operator called name, taking
// environment defaults from getenv (os.Getenv in production).
func DefaultOptions(name string, getenv func(string) string) Options {
	namespace := getenv(PodNamespaceEnv)
	if namespace == "" {
		namespace = DefaultLeaderElectionNamespace
	}
	return Options{
		Name:                    name,
		MetricsBindAddress:      ":8443",
		MetricsSecure:           true,
		HealthProbeBindAddress:  ":8081",
		LeaderElect:             true,
		LeaderElectionNamespace: namespace,
		LeaderElectionID:        name + ".marina.dev",
		LeaseDuration:           60 * time.Second,
		RenewDeadline:           40 * time.Second,
		RetryPeriod:             15 * time.Second,
		KubeAPIQPS:              50,
		KubeAPIBurst:            100,
		DataCenter:              getenv(DataCenterEnv),
		GracefulShutdownTimeout: 30 * time.Second,
		Zap:                     zap.Options{Development: false},
	}
}

// BindFlags registers the options on fs, with their current values as
// defaults. It also makes sure fs carries controller-runtime's --kubeconfig,
// which that package registers on flag.CommandLine by itself; registering it
// again there would panic.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.MetricsBindAddress, FlagMetricsBindAddress, o.MetricsBindAddress,
		`Address the Prometheus metrics endpoint binds to; "0" disables it.`)
	fs.BoolVar(&o.MetricsSecure, FlagMetricsSecure, o.MetricsSecure,
		"Serve metrics over HTTPS to clients the API server authenticates and authorizes for GET /metrics; false serves plain HTTP to anyone who reaches the port.")
	fs.StringVar(&o.MetricsCertDir, FlagMetricsCertDir, o.MetricsCertDir,
		"Folder with the metrics server's tls.crt and tls.key, reloaded when they change; empty makes a self-signed certificate at start.")
	fs.StringVar(&o.HealthProbeBindAddress, FlagHealthProbeBindAddress, o.HealthProbeBindAddress,
		`Address the /healthz and /readyz endpoints bind to; "0" disables them.`)
	fs.BoolVar(&o.LeaderElect, FlagLeaderElect, o.LeaderElect,
		"Elect a leader so only one replica reconciles at a time.")
	fs.StringVar(&o.LeaderElectionNamespace, FlagLeaderElectionNamespace, o.LeaderElectionNamespace,
		"Namespace of the leader election Lease; defaults to $"+PodNamespaceEnv+" when that is set.")
	fs.StringVar(&o.LeaderElectionID, FlagLeaderElectionID, o.LeaderElectionID,
		"Name of the leader election Lease.")
	fs.DurationVar(&o.LeaseDuration, FlagLeaderElectionLease, o.LeaseDuration,
		"How long a replica waits before taking over the Lease of a leader that stopped renewing it.")
	fs.DurationVar(&o.RenewDeadline, FlagLeaderElectionRenew, o.RenewDeadline,
		"How long the leader keeps trying to renew its Lease before it stops reconciling.")
	fs.DurationVar(&o.RetryPeriod, FlagLeaderElectionRetry, o.RetryPeriod,
		"How often the leader renews its Lease (one write each time) and the others try to take it.")
	fs.Float64Var(&o.KubeAPIQPS, FlagKubeAPIQPS, o.KubeAPIQPS,
		"Requests per second to the management cluster's API server, on average.")
	fs.IntVar(&o.KubeAPIBurst, FlagKubeAPIBurst, o.KubeAPIBurst,
		"Requests to the management cluster's API server allowed in a burst above --kube-api-qps.")
	fs.StringVar(&o.DataCenter, FlagDataCenter, o.DataCenter,
		"Data center this operator serves; required, defaults to $"+DataCenterEnv+".")
	fs.DurationVar(&o.GracefulShutdownTimeout, FlagGracefulShutdownTimeout, o.GracefulShutdownTimeout,
		"How long reconcilers get to finish after SIGTERM; 0 stops at once.")
	o.Zap.BindFlags(fs)
	config.RegisterFlags(fs)
}

// Validate reports the first option a person has to fix, naming its flag.
func (o Options) Validate() error {
	if o.Name == "" {
		return errors.New("operator name is empty")
	}
	if o.DataCenter == "" {
		return fmt.Errorf("--%s is required: set it, or $%s, to the data center this operator serves", FlagDataCenter, DataCenterEnv)
	}
	// The data center ends up in labels and metric labels, so it has to be a
	// valid label value wherever it came from.
	// The same rule as ControlPlane spec.dataCenter, which this is compared with.
	if errs := validation.IsDNS1123Label(o.DataCenter); len(errs) > 0 {
		return fmt.Errorf("--%s=%q is not a DNS label like ControlPlane spec.dataCenter: %s", FlagDataCenter, o.DataCenter, strings.Join(errs, "; "))
	}
	if o.LeaderElect {
		if o.LeaderElectionNamespace == "" {
			return fmt.Errorf("--%s must not be empty when --%s is true", FlagLeaderElectionNamespace, FlagLeaderElect)
		}
		if errs := validation.IsDNS1123Label(o.LeaderElectionNamespace); len(errs) > 0 {
			return fmt.Errorf("--%s=%q is not a namespace name: %s", FlagLeaderElectionNamespace, o.LeaderElectionNamespace, strings.Join(errs, "; "))
		}
		if errs := validation.IsDNS1123Subdomain(o.LeaderElectionID); len(errs) > 0 {
			return fmt.Errorf("--%s=%q is not a Lease name: %s", FlagLeaderElectionID, o.LeaderElectionID, strings.Join(errs, "; "))
		}
		// client-go refuses other timings at start; say which flag to fix.
		if o.RetryPeriod <= 0 || o.RenewDeadline <= o.RetryPeriod || o.LeaseDuration <= o.RenewDeadline {
			return fmt.Errorf("--%s (%s) must be longer than --%s (%s), which must be longer than --%s (%s), which must be positive",
				FlagLeaderElectionLease, o.LeaseDuration, FlagLeaderElectionRenew, o.RenewDeadline, FlagLeaderElectionRetry, o.RetryPeriod)
		}
	}
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst < 1 {
		return fmt.Errorf("--%s=%g and --%s=%d must be positive", FlagKubeAPIQPS, o.KubeAPIQPS, FlagKubeAPIBurst, o.KubeAPIBurst)
	}
	// A negative timeout means "wait forever" to controller-runtime, which
	// would let one stuck reconciler keep a pod Terminating until SIGKILL.
	if o.GracefulShutdownTimeout < 0 {
		return fmt.Errorf("--%s=%s must not be negative", FlagGracefulShutdownTimeout, o.GracefulShutdownTimeout)
	}
	return nil
}

// ParseOptions returns the options of the operator called name from the
// command-line arguments args (without the program name), binding them to fs
// and taking environment defaults from getenv. The error is flag.ErrHelp when
// help was asked for; other errors name the flag to fix.
func ParseOptions(name string, fs *flag.FlagSet, args []string, getenv func(string) string) (Options, error) {
	o := DefaultOptions(name, getenv)
	o.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	if fs.NArg() > 0 {
		return Options{}, fmt.Errorf("unexpected arguments %q: %s takes only flags", fs.Args(), name)
	}
	if err := o.Validate(); err != nil {
		return Options{}, err
	}
	return o, nil
}
