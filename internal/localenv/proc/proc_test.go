package proc

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func sleeper(t *testing.T) Spec {
	t.Helper()
	return Spec{Name: "sleeper", Path: "/bin/sleep", Args: []string{"300"}, Dir: t.TempDir()}
}

func TestStartIsIdempotentAndStopEndsTheProcess(t *testing.T) {
	s := sleeper(t)
	pid, err := Start(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Stop(s, time.Second) })

	again, err := Start(s)
	if err != nil {
		t.Fatal(err)
	}
	if again != pid {
		t.Fatalf("second Start started pid %d; want the running %d reused", again, pid)
	}
	if err := Stop(s, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, ok := Running(s); ok {
		t.Fatal("still running after Stop")
	}
	if _, err := os.Stat(s.PIDFile()); !os.IsNotExist(err) {
		t.Fatalf("pid file left behind: %v", err)
	}
}

func TestStopNeverSignalsAnotherProgram(t *testing.T) {
	s := sleeper(t)
	// Our own test process stands in for an unrelated program that got the
	// recorded PID after a reboot: its binary is not /bin/sleep.
	self := os.Getpid()
	if err := os.WriteFile(s.PIDFile(), []byte(strconv.Itoa(self)+"\n/bin/sleep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := Running(s); ok {
		t.Fatal("Running mistook another program for the recorded process")
	}
	if err := Stop(s, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(self, 0); err != nil {
		t.Fatalf("the test process was signalled: %v", err)
	}
}

func TestOutputGoesToTheLogFile(t *testing.T) {
	s := Spec{Name: "echo", Path: "/bin/sh", Args: []string{"-c", "echo hello from marina; sleep 300"}, Dir: t.TempDir()}
	if _, err := Start(s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Stop(s, time.Second) })
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(s.LogFile())
		if strings.Contains(string(data), "hello from marina") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("log file never received the output")
}

// A process started in a network namespace is nsenter until it execs the
// binary, and for a moment during that exec the kernel shows an empty
// command line. Running must call it running throughout: on a busy CI
// machine that moment once made the Vault dev server look as if it had
// exited during start. The CPU is kept busy to widen the moment.
func TestRunningThroughTheExecOfANetNSProcess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	ns := "marina-proc-test-" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })

	stop := make(chan struct{})
	defer close(stop)
	for range 4 {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	for i := range 60 {
		s := Spec{Name: "sleeper", Path: "/bin/sleep", Args: []string{"300"}, Dir: t.TempDir(), NetNS: ns}
		if _, err := Start(s); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if _, ok := Running(s); !ok {
				_ = Stop(s, time.Second)
				t.Fatalf("start %d: Running says the process is gone while it execs", i)
			}
		}
		if err := Stop(s, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}
