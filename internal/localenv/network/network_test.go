package network

import (
	"bufio"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// testTopology does not overlap the environment's own names and subnets, so
// the test can run while `make up` is up.
var testTopology = Topology{
	Bridge:        "mtest0",
	Chain:         "MARINA-TEST-FWD",
	Gateway:       "10.239.0.1/16",
	PodSubnet:     "10.238.0.0/16",
	ServiceSubnet: "10.240.0.0/16",
	VethPrefix:    "vt-",
}

func TestHostsReachEachOtherAndTeardownLeavesNothing(t *testing.T) {
	topo := testTopology
	_, podA, _ := net.ParseCIDR("10.238.1.0/24")
	a := Host{Name: "mt-a", IP: net.ParseIP("10.239.0.2"), PodCIDR: podA}
	b := Host{Name: "mt-b", IP: net.ParseIP("10.239.0.3")}
	t.Cleanup(func() {
		_ = topo.DeleteHost(a)
		_ = topo.DeleteHost(b)
		_ = topo.DeleteBridge()
	})

	// Twice: every step must be idempotent, as a second `up` runs it again.
	for i := 0; i < 2; i++ {
		if err := topo.EnsureBridge(); err != nil {
			t.Fatal(err)
		}
		for _, h := range []Host{a, b} {
			if err := topo.EnsureHost(h); err != nil {
				t.Fatal(err)
			}
		}
	}

	// A server inside a answers a client inside b, across the bridge.
	var ln net.Listener
	if err := Do(a.Name, func() (err error) {
		ln, err = net.Listen("tcp", "10.239.0.2:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("hello from mt-a\n"))
	}()
	var got string
	if err := Do(b.Name, func() error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		got, err = bufio.NewReader(c).ReadString('\n')
		return err
	}); err != nil {
		t.Fatalf("b cannot reach a: %v", err)
	}
	if got != "hello from mt-a\n" {
		t.Fatalf("got %q", got)
	}

	// The host routes a's pod subnet to a.
	if out, _ := exec.Command("ip", "route", "show", "10.238.1.0/24").Output(); !strings.Contains(string(out), "via 10.239.0.2") {
		t.Errorf("no route to a's pod subnet: %q", out)
	}
	// Service IPs never leave the host.
	if out, _ := exec.Command("ip", "route", "show", "10.240.0.0/16").Output(); !strings.Contains(string(out), "unreachable") {
		t.Errorf("no unreachable route for the Service subnet: %q", out)
	}
	// Nothing from the environment is forwarded elsewhere: the chain ends in
	// drops for both subnets and FORWARD jumps to it first.
	rules, _ := exec.Command("iptables", "-w", "-S", topo.Chain).Output()
	for _, want := range []string{"-s 10.239.0.0/16 -j DROP", "-s 10.238.0.0/16 -j DROP"} {
		if !strings.Contains(string(rules), want) {
			t.Errorf("chain %s lacks %q:\n%s", topo.Chain, want, rules)
		}
	}
	fwd, _ := exec.Command("iptables", "-w", "-S", "FORWARD").Output()
	if lines := strings.Split(string(fwd), "\n"); len(lines) < 2 || !strings.Contains(lines[1], "-j "+topo.Chain) {
		t.Errorf("FORWARD does not jump to %s first:\n%s", topo.Chain, fwd)
	}

	for _, h := range []Host{a, b} {
		if err := topo.DeleteHost(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := topo.DeleteBridge(); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), "mt-a") || strings.Contains(string(out), "mt-b") {
		t.Errorf("namespaces left behind: %s", out)
	}
	if exec.Command("ip", "link", "show", topo.Bridge).Run() == nil {
		t.Error("bridge left behind")
	}
	if exec.Command("iptables", "-w", "-S", topo.Chain).Run() == nil {
		t.Error("iptables chain left behind")
	}
	for _, r := range []string{"10.238.1.0/24", "10.240.0.0/16"} {
		if out, _ := exec.Command("ip", "route", "show", r).Output(); len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("route left behind: %s", out)
		}
	}
}
