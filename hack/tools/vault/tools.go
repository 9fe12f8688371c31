//go:build tools

// Package tools imports the Vault server so that this module's requirement
// on it is used: without the import, `go mod tidy` would drop the pin. The
// build tag keeps the file out of every build; the Makefile builds the
// binary with `go build github.com/hashicorp/vault`.
package tools

import _ "github.com/hashicorp/vault"
