// Command marina-controlplane provisions federation control planes from
// ControlPlane resources.
package main

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/marina-platform/marina/internal/operator"
)

func main() {
	operator.Main("marina-controlplane", setup)
}

// setup registers marina-controlplane's reconcilers; none exist yet.
func setup(_ ctrl.Manager, _ operator.Options) error {
	return nil
}
