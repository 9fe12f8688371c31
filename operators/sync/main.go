// Command marina-sync keeps PolicySets identical across the control planes of
// its data center and replicates them to peer data centers.
package main

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/marina-platform/marina/internal/operator"
)

func main() {
	operator.Main("marina-sync", setup)
}

// setup registers marina-sync's reconcilers; none exist yet.
func setup(_ ctrl.Manager, _ operator.Options) error {
	return nil
}
