// Package proc starts and stops the local environment's long-running
// processes (etcd, kube-apiserver, containerd, kubelet …). Every process is
// recorded in a pid file and stopped by that PID only, so that `down` never
// touches a process the environment did not start.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Spec is one process of the environment.
type Spec struct {
	// Name identifies the process in messages and names its files.
	Name string
	// Path of the binary and its arguments.
	Path string
	Args []string
	// Env is added to the environment of the process.
	Env []string
	// NetNS is the name of a network namespace (under /var/run/netns) to run
	// in; the host's when empty. The process is started through
	// `nsenter --net`, which, unlike `ip netns exec`, leaves /sys alone:
	// kubelet and runc need the host's cgroup mounts there.
	NetNS string
	// Dir holds the pid file and the log (<Name>.pid, <Name>.log).
	Dir string
}

// PIDFile is where the process's PID is recorded.
func (s Spec) PIDFile() string { return filepath.Join(s.Dir, s.Name+".pid") }

// LogFile receives the process's standard output and error.
func (s Spec) LogFile() string { return filepath.Join(s.Dir, s.Name+".log") }

// Start starts the process unless the one recorded in its pid file still
// runs the same binary, which makes a second `up` cheap. It returns the PID.
func Start(s Spec) (int, error) {
	if pid, ok := Running(s); ok {
		return pid, nil
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(s.LogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()

	path, args := s.Path, s.Args
	if s.NetNS != "" {
		path, args = "nsenter", append([]string{"--net=" + NetNSPath(s.NetNS), "--", s.Path}, s.Args...)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A session of its own: the process outlives `up` and a Ctrl-C in the
	// terminal that ran it does not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", s.Name, err)
	}
	pid := cmd.Process.Pid
	// Reap it in the background if it dies while we still run, so that
	// Running does not mistake a zombie for a live process.
	go func() { _ = cmd.Wait() }()
	if err := os.WriteFile(s.PIDFile(), []byte(strconv.Itoa(pid)+"\n"+s.Path+"\n"), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return 0, err
	}
	return pid, nil
}

// Running reports whether the process recorded for s runs, and its PID.
func Running(s Spec) (int, bool) {
	pid, binary, err := readPIDFile(s.PIDFile())
	if err != nil {
		return 0, false
	}
	return pid, alive(pid, binary)
}

// Stop sends SIGTERM to the recorded process, waits up to grace for it to
// exit, then sends SIGKILL, and removes the pid file. A pid file whose
// process is gone, or whose PID now belongs to another program, is only
// removed.
func Stop(s Spec, grace time.Duration) error {
	pid, binary, err := readPIDFile(s.PIDFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if alive(pid, binary) {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(grace)
		for alive(pid, binary) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if alive(pid, binary) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			for i := 0; i < 50 && alive(pid, binary); i++ {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if alive(pid, binary) {
			return fmt.Errorf("%s (pid %d) did not stop", s.Name, pid)
		}
	}
	return os.Remove(s.PIDFile())
}

func readPIDFile(path string) (int, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, "", err
	}
	lines := strings.SplitN(strings.TrimSpace(string(data)), "\n", 2)
	pid, err := strconv.Atoi(lines[0])
	if err != nil || pid <= 0 {
		return 0, "", fmt.Errorf("%s: no PID in it", path)
	}
	binary := ""
	if len(lines) == 2 {
		binary = lines[1]
	}
	return pid, binary, nil
}

// alive is true while pid runs binary: after a restart of the machine the
// PID may belong to something else, which must never be signalled.
func alive(pid int, binary string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Field 3 is the state; Z is a zombie that only waits to be reaped.
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
		return false
	}
	if binary == "" {
		return true
	}
	cmdline, err := readCmdline(pid)
	if err != nil {
		return false
	}
	argv0 := string(bytes.SplitN(cmdline, []byte{0}, 2)[0])
	// Right after Start, a process in a network namespace may still be the
	// nsenter that is about to exec the binary.
	return argv0 == binary || filepath.Base(argv0) == filepath.Base(binary) || filepath.Base(argv0) == "nsenter"
}

// readCmdline reads a process's command line. While a process is in the
// middle of execve the kernel shows an empty one for a moment; under load
// that moment is long enough to be seen right after Start (nsenter exec'ing
// the binary), and taking it for "not our process" made a healthy start look
// like an early exit. An empty command line is therefore read again for a
// little while; kernel threads, whose command line stays empty, still end
// up as not ours.
func readCmdline(pid int) ([]byte, error) {
	path := fmt.Sprintf("/proc/%d/cmdline", pid)
	for i := 0; ; i++ {
		cmdline, err := os.ReadFile(path)
		if err != nil || len(cmdline) > 0 || i == 20 {
			return cmdline, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// NetNSPath is the file of a named network namespace.
func NetNSPath(name string) string { return filepath.Join("/var/run/netns", name) }

// LogTail returns the last lines of the process's log, for error messages
// that must say why a process died without sending a person to look.
func LogTail(s Spec, lines int) string {
	data, err := os.ReadFile(s.LogFile())
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
