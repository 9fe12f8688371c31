// Command marina-sync keeps PolicySets identical across the control planes of
// its data center. Replication to peer data centers is still to come.
package main

import (
	"flag"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/marina-platform/marina/internal/operator"
	"github.com/marina-platform/marina/internal/urlpolicy"
	"github.com/marina-platform/marina/operators/sync/controller"
)

// flags are this operator's own, next to the ones every operator takes.
var flags struct {
	allowedHosts urlpolicy.Hosts
	retryAfter   time.Duration
}

func init() {
	flag.Var(&flags.allowedHosts, "allowed-url-hosts",
		"Hosts (or *.domain patterns), comma-separated, that PolicySets' http sources and proxies may name; empty allows any.")
	flag.DurationVar(&flags.retryAfter, "retry-after", 30*time.Second,
		"How soon a PolicySet is tried again when a source, a control plane or an object is not ready.")
}

func main() {
	operator.Main("marina-sync", setup)
}

// setup registers the PolicySet reconciler.
func setup(mgr ctrl.Manager, _ operator.Options) error {
	return (&controller.Reconciler{
		Client:     mgr.GetClient(),
		Recorder:   mgr.GetEventRecorder("marina-sync"),
		URLPolicy:  urlpolicy.Policy{Allowed: flags.allowedHosts},
		RetryAfter: flags.retryAfter,
	}).SetupWithManager(mgr)
}
