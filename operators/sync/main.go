// Command marina-sync keeps PolicySets identical across the control planes of
// its data center, and replicates what is authored in its data center
// (PolicySets, RegistrationPolicies, MemberClusters) to every Peer.
package main

import (
	"flag"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/marina-platform/marina/internal/operator"
	"github.com/marina-platform/marina/internal/secrets"
	"github.com/marina-platform/marina/internal/urlpolicy"
	"github.com/marina-platform/marina/operators/sync/controller"
	"github.com/marina-platform/marina/operators/sync/peer"
)

// flags are this operator's own, next to the ones every operator takes.
var flags struct {
	allowedHosts urlpolicy.Hosts
	retryAfter   time.Duration
	peerResync   time.Duration
}

func init() {
	flag.Var(&flags.allowedHosts, "allowed-url-hosts",
		"Hosts (or *.domain patterns), comma-separated, that PolicySets' http sources and proxies may name; empty allows any.")
	flag.DurationVar(&flags.retryAfter, "retry-after", 30*time.Second,
		"How soon a PolicySet is tried again when a source, a control plane or an object is not ready.")
	flag.DurationVar(&flags.peerResync, "peer-resync", time.Minute,
		"How often every Peer is compared in full with what originates here even when nothing changed (three list requests, no write).")
}

func main() {
	operator.Main("marina-sync", setup, secrets.ManagerOptions)
}

// setup registers the PolicySet and Peer reconcilers.
func setup(mgr ctrl.Manager, opts operator.Options) error {
	if err := (&controller.Reconciler{
		Client:     mgr.GetClient(),
		Recorder:   mgr.GetEventRecorder("marina-sync"),
		URLPolicy:  urlpolicy.Policy{Allowed: flags.allowedHosts},
		RetryAfter: flags.retryAfter,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&peer.Reconciler{
		Client:     mgr.GetClient(),
		Recorder:   mgr.GetEventRecorder("marina-sync"),
		DataCenter: opts.DataCenter,
		Resync:     flags.peerResync,
	}).SetupWithManager(mgr)
}
