//go:build tools

// Package tools records local-path-provisioner's main package, which the
// Makefile builds from this module (`go build github.com/rancher/local-path-provisioner`).
package tools

import _ "github.com/rancher/local-path-provisioner"
