// Command marina-register onboards member clusters from Cluster API Clusters,
// kubeconfig Secrets and MemberClusters.
package main

import (
	"flag"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/marina-platform/marina/internal/operator"
	"github.com/marina-platform/marina/operators/register/controller"
	"github.com/marina-platform/marina/operators/register/policy"
)

// flags are this operator's own, next to the ones every operator takes.
var flags struct {
	probeInterval, statusInterval, resyncInterval time.Duration
	tokenRotation, tokenRevokeAfter               time.Duration
	leaseDuration                                 time.Duration
	workers                                       int
}

func init() {
	flag.DurationVar(&flags.probeInterval, "probe-interval", 30*time.Second,
		"How often each member's API server is probed (version, nodes), with ±10% jitter.")
	flag.DurationVar(&flags.statusInterval, "status-interval", 30*time.Minute,
		"How often a MemberCluster status that did not change is written anyway, refreshing lastProbeTime.")
	flag.DurationVar(&flags.resyncInterval, "resync-interval", 10*time.Minute,
		"How often a join in place is checked against both sides, taking back hand edits.")
	flag.DurationVar(&flags.tokenRotation, "token-rotation", 30*24*time.Hour,
		"Age at which the tokens a control plane holds for a member are replaced by new ones (0: never). Noticed at the next check of the join (--resync-interval).")
	flag.DurationVar(&flags.tokenRevokeAfter, "token-revoke-after", 10*time.Minute,
		"How long a replaced token keeps working once the control plane holds its successor.")
	flag.DurationVar(&flags.leaseDuration, "dispatch-lease-duration", 0,
		"How long a member's dispatch lease stays valid unrenewed: how long the members of a lost data center wait before a control plane of another takes over dispatching to them (0: three --probe-interval).")
	flag.IntVar(&flags.workers, "max-concurrent-reconciles", 10,
		"How many MemberClusters are reconciled at once.")
}

func main() {
	operator.Main("marina-register", setup, controller.ManagerOptions)
}

// setup registers the MemberCluster and RegistrationPolicy reconcilers.
func setup(mgr ctrl.Manager, opts operator.Options) error {
	if err := (&policy.Reconciler{
		Client:     mgr.GetClient(),
		Recorder:   mgr.GetEventRecorder("marina-register"),
		DataCenter: opts.DataCenter,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&controller.Reconciler{
		Client:         mgr.GetClient(),
		Recorder:       mgr.GetEventRecorder("marina-register"),
		DataCenter:     opts.DataCenter,
		ProbeInterval:  flags.probeInterval,
		StatusInterval: flags.statusInterval,
		ResyncInterval: flags.resyncInterval,

		TokenRotation:    flags.tokenRotation,
		TokenRevokeAfter: flags.tokenRevokeAfter,
		LeaseDuration:    flags.leaseDuration,
		Workers:          flags.workers,
	}).SetupWithManager(mgr)
}
