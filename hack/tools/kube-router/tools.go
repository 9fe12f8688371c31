//go:build tools

// Package tools records kube-router's main package, which the Makefile
// builds from this module (`go build github.com/cloudnativelabs/kube-router/v2/cmd/kube-router`).
package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
