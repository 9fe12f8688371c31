// Package metricsadapter is what karmada-metrics-adapter needs inside the
// federation API server: the APIServices of metrics.k8s.io and
// custom.metrics.k8s.io, as the engine's installer registers them, and the
// Service they name. (Its Deployment, Service and certificate in the
// management cluster come from charts/controlplane.)
package metricsadapter

import "github.com/marina-platform/marina/operators/controlplane/component/apiservice"

// Server is its registration with the aggregator.
var Server = apiservice.Server{
	Service: "karmada-metrics-adapter",
	APIs: []apiservice.GroupVersion{
		{Group: "metrics.k8s.io", Version: "v1beta1", GroupPriorityMinimum: 2000, VersionPriority: 10},
		{Group: "custom.metrics.k8s.io", Version: "v1beta2", GroupPriorityMinimum: 100, VersionPriority: 200},
		{Group: "custom.metrics.k8s.io", Version: "v1beta1", GroupPriorityMinimum: 100, VersionPriority: 200},
	},
}
