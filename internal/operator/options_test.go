package operator

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client/config"
)

func TestParseOptions(t *testing.T) {
	const name = "marina-test"
	defaults := Options{
		Name:                    name,
		MetricsBindAddress:      ":8443",
		MetricsSecure:           true,
		HealthProbeBindAddress:  ":8081",
		LeaderElect:             true,
		LeaderElectionNamespace: "marina-system",
		LeaderElectionID:        "marina-test.marina.dev",
		LeaseDuration:           60 * time.Second,
		RenewDeadline:           40 * time.Second,
		RetryPeriod:             15 * time.Second,
		KubeAPIQPS:              50,
		KubeAPIBurst:            100,
		DataCenter:              "dc1",
		GracefulShutdownTimeout: 30 * time.Second,
	}
	with := func(change func(*Options)) Options {
		o := defaults
		change(&o)
		return o
	}

	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		want      Options
		wantDevel bool
		// wantErr is a substring of the error; empty means no error.
		wantErr string
	}{
		{
			name: "defaults with the data center from the environment",
			env:  map[string]string{DataCenterEnv: "dc1"},
			want: defaults,
		},
		{
			name: "data center from the flag",
			args: []string{"--data-center=dc1"},
			want: defaults,
		},
		{
			name: "flag wins over the environment",
			args: []string{"--data-center=dc2"},
			env:  map[string]string{DataCenterEnv: "dc1"},
			want: with(func(o *Options) { o.DataCenter = "dc2" }),
		},
		{
			name: "leader election namespace from POD_NAMESPACE",
			env:  map[string]string{DataCenterEnv: "dc1", PodNamespaceEnv: "marina-operators"},
			want: with(func(o *Options) { o.LeaderElectionNamespace = "marina-operators" }),
		},
		{
			name: "every flag set",
			args: []string{
				"--data-center=eu-west-1",
				"--metrics-bind-address=0",
				"--metrics-secure=false",
				"--metrics-cert-dir=/certs",
				"--health-probe-bind-address=127.0.0.1:9440",
				"--leader-elect=false",
				"--leader-election-namespace=ops",
				"--leader-election-id=sync-lock",
				"--graceful-shutdown-timeout=5s",
				"--leader-election-lease-duration=30s",
				"--leader-election-renew-deadline=20s",
				"--leader-election-retry-period=5s",
				"--kube-api-qps=10",
				"--kube-api-burst=15",
				"--zap-devel",
			},
			env: map[string]string{PodNamespaceEnv: "ignored"},
			want: Options{
				Name:                    name,
				MetricsBindAddress:      "0",
				MetricsCertDir:          "/certs",
				HealthProbeBindAddress:  "127.0.0.1:9440",
				LeaderElect:             false,
				LeaderElectionNamespace: "ops",
				LeaderElectionID:        "sync-lock",
				LeaseDuration:           30 * time.Second,
				RenewDeadline:           20 * time.Second,
				RetryPeriod:             5 * time.Second,
				KubeAPIQPS:              10,
				KubeAPIBurst:            15,
				DataCenter:              "eu-west-1",
				GracefulShutdownTimeout: 5 * time.Second,
			},
			wantDevel: true,
		},
		{
			name:    "missing data center",
			wantErr: "--data-center is required: set it, or $MARINA_DATA_CENTER",
		},
		{
			name:    "empty data center flag overrides the environment",
			args:    []string{"--data-center="},
			env:     map[string]string{DataCenterEnv: "dc1"},
			wantErr: "--data-center is required",
		},
		{
			name:    "data center that is not a DNS label",
			args:    []string{"--data-center=dc 1"},
			wantErr: `--data-center="dc 1" is not a DNS label`,
		},
		{
			name:    "data center in upper case, which spec.dataCenter rejects",
			args:    []string{"--data-center=FRA1"},
			wantErr: `--data-center="FRA1" is not a DNS label`,
		},
		{
			name:    "leader election namespace that is not a namespace name",
			args:    []string{"--data-center=dc1", "--leader-election-namespace=Marina_System"},
			wantErr: `--leader-election-namespace="Marina_System" is not a namespace name`,
		},
		{
			name:    "empty leader election namespace",
			args:    []string{"--data-center=dc1", "--leader-election-namespace="},
			wantErr: "--leader-election-namespace must not be empty",
		},
		{
			name: "leader election namespace is not checked without leader election",
			args: []string{"--data-center=dc1", "--leader-elect=false", "--leader-election-namespace="},
			want: with(func(o *Options) { o.LeaderElect = false; o.LeaderElectionNamespace = "" }),
		},
		{
			name:    "leader election id that is not a Lease name",
			args:    []string{"--data-center=dc1", "--leader-election-id=Sync/Lock"},
			wantErr: `--leader-election-id="Sync/Lock" is not a Lease name`,
		},
		{
			name: "leader election timing and request rate from flags",
			args: []string{"--data-center=dc1", "--leader-election-lease-duration=15s", "--leader-election-renew-deadline=10s",
				"--leader-election-retry-period=2s", "--kube-api-qps=20", "--kube-api-burst=30"},
			want: with(func(o *Options) {
				o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 15*time.Second, 10*time.Second, 2*time.Second
				o.KubeAPIQPS, o.KubeAPIBurst = 20, 30
			}),
		},
		{
			name:    "renew deadline not shorter than the lease",
			args:    []string{"--data-center=dc1", "--leader-election-renew-deadline=60s"},
			wantErr: "--leader-election-lease-duration (1m0s) must be longer than --leader-election-renew-deadline (1m0s)",
		},
		{
			name:    "zero request rate",
			args:    []string{"--data-center=dc1", "--kube-api-qps=0"},
			wantErr: "--kube-api-qps=0 and --kube-api-burst=100 must be positive",
		},
		{
			name:    "negative graceful shutdown timeout",
			args:    []string{"--data-center=dc1", "--graceful-shutdown-timeout=-1s"},
			wantErr: "--graceful-shutdown-timeout=-1s must not be negative",
		},
		{
			name:    "unknown flag",
			args:    []string{"--data-centre=dc1"},
			wantErr: "flag provided but not defined: -data-centre",
		},
		{
			name:    "positional argument",
			args:    []string{"--data-center=dc1", "run"},
			wantErr: `unexpected arguments ["run"]`,
		},
		{
			name:    "bad zap level",
			args:    []string{"--data-center=dc1", "--zap-log-level=loud"},
			wantErr: `invalid log level "loud"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet(name, flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			getenv := func(key string) string { return tt.env[key] }

			got, err := ParseOptions(name, fs, tt.args, getenv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseOptions() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseOptions() error = %v", err)
			}
			if got.Zap.Development != tt.wantDevel {
				t.Errorf("Zap.Development = %v, want %v", got.Zap.Development, tt.wantDevel)
			}
			// zap.Options holds encoder functions that cannot be compared.
			got.Zap = tt.want.Zap
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseOptions() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseOptionsHelp(t *testing.T) {
	fs := flag.NewFlagSet("marina-test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	_, err := ParseOptions("marina-test", fs, []string{"-h"}, func(string) string { return "" })
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("ParseOptions(-h) error = %v, want flag.ErrHelp so Main can print usage and exit 0", err)
	}
}

// Main binds its flags to flag.CommandLine, where controller-runtime has
// already registered --kubeconfig; binding must reuse that flag, not panic
// on a second registration, and the value must reach controller-runtime.
func TestParseOptionsKubeconfigAlreadyRegistered(t *testing.T) {
	if flag.CommandLine.Lookup(config.KubeconfigFlagName) == nil {
		t.Fatalf("flag.CommandLine has no --%s; Main relies on controller-runtime registering it", config.KubeconfigFlagName)
	}

	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	const server = "https://marina.example:6443"
	data := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "` + server + `"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
	if err := os.WriteFile(kubeconfig, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}

	fs := flag.NewFlagSet("marina-test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	config.RegisterFlags(fs) // as controller-runtime's init does on flag.CommandLine
	args := []string{"--data-center=dc1", "--kubeconfig=" + kubeconfig}
	if _, err := ParseOptions("marina-test", fs, args, func(string) string { return "" }); err != nil {
		t.Fatalf("ParseOptions() error = %v", err)
	}
	cfg, err := config.GetConfig()
	if err != nil {
		t.Fatalf("GetConfig() after --kubeconfig=%s: %v", kubeconfig, err)
	}
	if cfg.Host != server {
		t.Errorf("GetConfig().Host = %q, want %q from --kubeconfig", cfg.Host, server)
	}
}
