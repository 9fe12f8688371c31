// Pins the Vault release that Marina's tests and local environment build from
// source (a test dependency only, never shipped: Vault is BSL-licensed). Kept
// out of the main module because Vault's go.mod replaces its api and sdk
// modules with local paths, which only a module of its own can override.
//
// go.sum is Vault v1.21.1's own plus the lines for Vault itself and the
// replacements, so the build resolves exactly the versions Vault released
// with. Do not run `go mod tidy` here: it would list some 500 indirect modules
// and raise golang.org/x/crypto and golang.org/x/net above Vault's versions.
module github.com/marina-platform/marina/hack/tools/vault

go 1.26.0

require github.com/hashicorp/vault v1.21.1

// Vault's own go.mod points these at folders inside its repository; use the
// published versions that match v1.21.1's api and sdk.
replace (
	github.com/hashicorp/vault/api => github.com/hashicorp/vault/api v1.22.0
	github.com/hashicorp/vault/api/auth/approle => github.com/hashicorp/vault/api/auth/approle v0.12.0
	github.com/hashicorp/vault/api/auth/kubernetes => github.com/hashicorp/vault/api/auth/kubernetes v0.12.0
	github.com/hashicorp/vault/api/auth/userpass => github.com/hashicorp/vault/api/auth/userpass v0.12.0
	github.com/hashicorp/vault/sdk => github.com/hashicorp/vault/sdk v0.20.0
)

// Vault's other two replace lines, copied from its go.mod.
replace github.com/99designs/keyring => github.com/Jeffail/keyring v1.2.3

replace github.com/ma314smith/signedxml v1.1.1 => github.com/moov-io/signedxml v1.1.1
