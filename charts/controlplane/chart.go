// Package controlplane carries the controlplane Helm chart inside the
// operator binary, so that the chart the operator renders is always the one
// it was built and tested with; nothing is read from disk or a repository at
// run time.
package controlplane

import "embed"

// Files are the chart's files, rooted at the chart folder (Chart.yaml,
// values.yaml, values.schema.json, templates/…). Go sources, tests' inputs
// and the README are left out.
//
//go:embed Chart.yaml values.yaml values.schema.json all:templates
var Files embed.FS
