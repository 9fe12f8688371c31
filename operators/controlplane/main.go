// Command marina-controlplane provisions federation control planes from
// ControlPlane resources.
package main

import (
	"flag"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/marina-platform/marina/internal/operator"
	"github.com/marina-platform/marina/operators/controlplane/controller"
	"github.com/marina-platform/marina/operators/controlplane/crdbundle"
	"github.com/marina-platform/marina/operators/controlplane/render"
)

// flags are this operator's own, next to the ones every operator takes.
var flags controller.Flags

func init() { flags.Bind(flag.CommandLine) }

func main() {
	operator.Main("marina-controlplane", setup, controller.ManagerOptions)
}

// setup registers the ControlPlane reconciler with the chart built into the
// binary.
func setup(mgr ctrl.Manager, opts operator.Options) error {
	chart, err := render.Load()
	if err != nil {
		return err
	}
	return (&controller.Reconciler{
		Client:     mgr.GetClient(),
		APIReader:  mgr.GetAPIReader(),
		Recorder:   mgr.GetEventRecorder("marina-controlplane"),
		Chart:      chart,
		CRDs:       crdbundle.NewFetcher(),
		DataCenter: opts.DataCenter,

		KMSPluginImage:    flags.KMSPluginImage,
		VaultPollInterval: flags.VaultPollInterval,
		ClusterDomain:     flags.ClusterDomain,
		URLPolicy:         flags.URLPolicy,
		PodCIDRs:          flags.PodCIDRs,
		OperatorNamespace: opts.LeaderElectionNamespace,
	}).SetupWithManager(mgr)
}
