// Package version holds the build's version and commit, stamped by the
// linker so a running operator can say exactly what it is:
//
//	go build -ldflags "-X github.com/marina-platform/marina/internal/version.Version=v0.1.0 \
//	  -X github.com/marina-platform/marina/internal/version.Commit=$(git rev-parse HEAD)"
package version

// These are variables, not constants, because -ldflags -X can only set
// package-level string variables.
var (
	// Version is the release, e.g. v0.1.0; "dev" for an unstamped build.
	Version = "dev"
	// Commit is the Git commit the binary was built from; "dev" for an
	// unstamped build.
	Commit = "dev"
)
