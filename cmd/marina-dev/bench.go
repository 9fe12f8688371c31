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
// (binaries cached), a second up, its memory, control planes provisioned by
// the controlplane operator, and down. It writes a Markdown report; nothing
// here is a pass/fail threshold.
func bench(ctx context.Context, opts localenv.Options, report string) error {
	ctx, cancel := context.WithTimeout(ctx, 40*time.Minute)
	defer cancel()
	if _, err := localenv.Load(opts.Dir); err == nil {
		return fmt.Errorf("an environment is up in %s: run `make down` first, the benchmark measures up from nothing", opts.Dir)
	}
	env, err := localenv.New(opts)
	if err != nil {
		return err
	}
	env.Out = io.Discard

	// Sample the environment's memory while it comes up and settles, for
	// its peak; the last sample is its steady state.
	var peak, last memory
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			m := measureMemory(env)
			if m.total() > peak.total() {
				peak = m
			}
			last = m
			select {
			case <-stopSampling:
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()

	start := time.Now()
	if err := env.Up(ctx); err != nil {
		close(stopSampling)
		return fmt.Errorf("up: %w", err)
	}
	cold := time.Since(start)

	start = time.Now()
	if err := env.Up(ctx); err != nil {
		close(stopSampling)
		return fmt.Errorf("second up: %w", err)
	}
	warm := time.Since(start)
	// Let the operators and DNS settle before the steady-state sample.
	time.Sleep(20 * time.Second)
	close(stopSampling)
	<-sampled

	cps, err := benchControlPlanes(ctx, env)
	if err != nil {
		return fmt.Errorf("control planes: %w (the environment is left up for a look; `make down` removes it)", err)
	}

	kms, err := benchEncryption(ctx, env)
	if err != nil {
		return fmt.Errorf("encryption: %w (the environment is left up for a look; `make down` removes it)", err)
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
	fmt.Fprintf(&b, "| peak memory of the environment | %d MiB (%d processes %d MiB + pods %d MiB) | < 6 GiB |\n", peak.total()>>20, peak.processes, peak.processRSS>>20, peak.podRSS>>20)
	fmt.Fprintf(&b, "| memory after up, settled | %d MiB (%d processes %d MiB + pods %d MiB) | < 6 GiB |\n", last.total()>>20, last.processes, last.processRSS>>20, last.podRSS>>20)
	fmt.Fprintf(&b, "| down | %s | |\n", down.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "\nMemory is resident memory: every process whose command line names the\nenvironment's folder (control planes, nodes, shared services, container\nshims), plus the pods' RSS from each node's memory cgroup.\n")
	fmt.Fprintf(&b, "\nA cold `make up` on a fresh machine adds the one-time build of the binaries\nfrom source (see `make test` cold time in the closing notes).\n")
	cps.report(&b)
	kms.report(&b)
	fmt.Print(b.String())
	if report == "" {
		return nil
	}
	return os.WriteFile(report, []byte(b.String()), 0o644)
}

// memory is the environment's resident memory at one moment.
type memory struct {
	processes  int
	processRSS int64
	podRSS     int64
}

func (m memory) total() int64 { return m.processRSS + m.podRSS }

// measureMemory adds up the resident memory of every process whose command
// line names the environment's folder, which covers the control planes,
// nodes, shared services and container shims, and the RSS of the pods in
// every node's memory cgroup.
func measureMemory(env *localenv.Env) memory {
	var m memory
	dir := env.Options().Dir
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), dir) {
			continue
		}
		if rss := statusKiB("/proc/"+e.Name()+"/status", "VmRSS:"); rss > 0 {
			m.processes++
			m.processRSS += rss << 10
		}
	}
	for _, dc := range env.DataCenters() {
		for _, n := range dc.Nodes() {
			m.podRSS += cgroupRSS(filepath.Join("/sys/fs/cgroup/memory", n.CgroupRoot(), "memory.stat"))
		}
	}
	return m
}

func statusKiB(file, field string) int64 {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == field {
			kib, _ := strconv.ParseInt(f[1], 10, 64)
			return kib
		}
	}
	return 0
}

// cgroupRSS reads total_rss (the cgroup and its children) from a cgroup v1
// memory.stat.
func cgroupRSS(file string) int64 {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "total_rss" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

func numCPU() int {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(data), "processor\t:")
}
