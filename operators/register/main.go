// Command marina-register onboards member clusters from Cluster API Clusters,
// kubeconfig Secrets and MemberClusters.
package main

import (
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/marina-platform/marina/internal/operator"
)

func main() {
	operator.Main("marina-register", setup)
}

// setup registers marina-register's reconcilers; none exist yet.
func setup(_ ctrl.Manager, _ operator.Options) error {
	return nil
}
