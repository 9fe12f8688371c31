// Package gomod reads the pins of the tools modules under hack/tools and
// fetches pinned modules through the Go module proxy, for the files the
// local environment needs from them (CRDs). One place, so that the
// Makefile, the image tags and the CRD downloads read a pin the same way.
package gomod

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Required finds "module version" among the require lines of goMod, in a
// require block or on a single `require` line.
func Required(goMod, module string) (string, error) {
	f, err := os.Open(goMod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(s.Text()), "require "))
		if len(fields) >= 2 && fields[0] == module {
			return fields[1], nil
		}
	}
	if err := s.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s does not require %s", goMod, module)
}

// Download returns the folder of module@version in the module cache,
// downloading it when needed. It runs outside Marina's module: this is a
// download, not a dependency.
func Download(ctx context.Context, module, version string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module+"@"+version)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	// On failure go still prints the JSON, with the reason in Error.
	var mod struct{ Dir, Error string }
	_ = json.Unmarshal(out, &mod)
	if err != nil {
		return "", fmt.Errorf("download %s@%s: %w: %s", module, version, err, strings.TrimSpace(mod.Error+" "+stderr.String()))
	}
	if mod.Dir == "" {
		return "", fmt.Errorf("download %s@%s: no module folder in %q", module, version, out)
	}
	return mod.Dir, nil
}
