// Package search is what karmada-search needs inside the federation API
// server: the APIService of search.karmada.io, as the engine's installer
// registers it, and the Service it names. (Its Deployment, Service and
// certificate in the management cluster come from charts/controlplane.)
package search

import "github.com/marina-platform/marina/operators/controlplane/component/apiservice"

// Server is its registration with the aggregator.
var Server = apiservice.Server{
	Service: "karmada-search",
	APIs:    []apiservice.GroupVersion{{Group: "search.karmada.io", Version: "v1alpha1", GroupPriorityMinimum: 2000, VersionPriority: 10}},
}
