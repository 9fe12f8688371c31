package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/marina-platform/marina/internal/localenv"
)

// bench measures the environment as a person meets it: up from nothing
// (binaries cached), a second up, its memory, and down. It writes a
// Markdown report; nothing here is a pass/fail threshold.
func bench(ctx context.Context, opts localenv.Options, report string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	if _, err := localenv.Load(opts.Dir); err == nil {
		return fmt.Errorf("an environment is up in %s: run `make down` first, the benchmark measures up from nothing", opts.Dir)
	}
	env, err := localenv.New(opts)
	if err != nil {
		return err
	}
	env.Out = io.Discard

	start := time.Now()
	if err := env.Up(ctx); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	cold := time.Since(start)

	start = time.Now()
	if err := env.Up(ctx); err != nil {
		return fmt.Errorf("second up: %w", err)
	}
	warm := time.Since(start)

	procs, rss, err := residentMemory(opts.Dir)
	if err != nil {
		return err
	}

	start = time.Now()
	if err := env.Down(ctx); err != nil {
		return fmt.Errorf("down: %w", err)
	}
	down := time.Since(start)

	var b strings.Builder
	fmt.Fprintf(&b, "# Local environment benchmark\n\n")
	fmt.Fprintf(&b, "%s, %d cores; %d data centers, %d member clusters each.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), numCPU(), opts.DataCenters, opts.Members)
	fmt.Fprintf(&b, "| measure | value | target |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| up from nothing (binaries and images cached) | %s | |\n", cold.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "| second up (everything running) | %s | < 3 min |\n", warm.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "| memory of the environment (RSS of its %d processes) | %d MiB | < 6 GiB |\n", procs, rss>>20)
	fmt.Fprintf(&b, "| down | %s | |\n", down.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "\nA cold `make up` on a fresh machine adds the one-time build of the Kubernetes\nbinaries and etcd from source (see `make test` cold time in the closing notes).\n")
	fmt.Print(b.String())
	if report == "" {
		return nil
	}
	return os.WriteFile(report, []byte(b.String()), 0o644)
}

// residentMemory adds up the resident memory of every process the
// environment recorded in a pid file under dir.
func residentMemory(dir string) (int, int64, error) {
	var n int
	var total int64
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".pid") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		pid := strings.SplitN(strings.TrimSpace(string(data)), "\n", 2)[0]
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			return nil // gone since: nothing to count
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
				kib, _ := strconv.ParseInt(f[1], 10, 64)
				total += kib << 10
				n++
			}
		}
		return nil
	})
	return n, total, err
}

func numCPU() int {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(data), "processor\t:")
}
