// Package network builds the local environment's network: a bridge on the
// host and one network namespace per simulated host (a data center's control
// plane, a node, the shared services), each joined to the bridge by a veth
// pair, with routes to the nodes' pod subnets.
//
// Nothing leaves it: the namespaces reach each other and the host's bridge
// address only, and a forward rule drops anything from the environment's
// subnets bound elsewhere. There is no masquerading.
package network

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
)

// Topology names the bridge, chain and subnets of one environment, so that a
// test can build its own next to a running environment.
type Topology struct {
	// Bridge is the host bridge every namespace is attached to.
	Bridge string
	// Chain is the iptables chain holding the environment's forward rules.
	Chain string
	// Gateway is the bridge's address and prefix, such as 10.210.0.1/16;
	// namespaces get addresses in the same subnet.
	Gateway string
	// PodSubnet contains every node's pod CIDR.
	PodSubnet string
	// ServiceSubnet contains the clusters' Service IPs. They only exist in
	// the nodes' kube-proxy rules; the host gets an unreachable route for
	// them so that a stray connection can never follow the default route
	// off the machine.
	ServiceSubnet string
	// VethPrefix starts the host-side veth names (at most 15 characters in
	// all, so keep it short).
	VethPrefix string
}

// Host is one network namespace.
type Host struct {
	// Name of the network namespace, and the suffix of its host-side veth.
	Name string
	// IP of the namespace's eth0, inside the topology's subnet.
	IP net.IP
	// PodCIDR is routed from the host to IP when the host is a node.
	PodCIDR *net.IPNet
}

// EnsureBridge creates the bridge and the forward rules and enables IPv4
// forwarding on the host; each step is skipped when already done.
func (t Topology) EnsureBridge() error {
	gw, subnet, err := net.ParseCIDR(t.Gateway)
	if err != nil {
		return fmt.Errorf("gateway %q: %w", t.Gateway, err)
	}
	if !linkExists(t.Bridge, "") {
		if err := run("ip", "link", "add", t.Bridge, "type", "bridge"); err != nil {
			return err
		}
	}
	ones, _ := subnet.Mask.Size()
	if err := run("ip", "addr", "replace", fmt.Sprintf("%s/%d", gw, ones), "dev", t.Bridge); err != nil {
		return err
	}
	if err := run("ip", "link", "set", t.Bridge, "up"); err != nil {
		return err
	}
	if t.ServiceSubnet != "" {
		if err := run("ip", "route", "replace", "unreachable", t.ServiceSubnet); err != nil {
			return err
		}
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable IPv4 forwarding: %w", err)
	}
	return t.ensureForwardRules(subnet.String())
}

// ensureForwardRules lets the environment's subnets talk among themselves
// and drops everything else they send through the host.
func (t Topology) ensureForwardRules(subnet string) error {
	if err := run("iptables", "-w", "-N", t.Chain); err != nil && !strings.Contains(err.Error(), "already exists") {
		return err
	}
	if err := run("iptables", "-w", "-F", t.Chain); err != nil {
		return err
	}
	nets := []string{subnet, t.PodSubnet}
	for _, src := range nets {
		for _, dst := range nets {
			if err := run("iptables", "-w", "-A", t.Chain, "-s", src, "-d", dst, "-j", "ACCEPT"); err != nil {
				return err
			}
		}
	}
	for _, src := range nets {
		if err := run("iptables", "-w", "-A", t.Chain, "-s", src, "-j", "DROP"); err != nil {
			return err
		}
	}
	if run("iptables", "-w", "-C", "FORWARD", "-j", t.Chain) != nil {
		return run("iptables", "-w", "-I", "FORWARD", "1", "-j", t.Chain)
	}
	return nil
}

// EnsureHost creates the namespace, its veth pair, address and default
// route, and the host route to its pod CIDR.
func (t Topology) EnsureHost(h Host) error {
	gw, subnet, err := net.ParseCIDR(t.Gateway)
	if err != nil {
		return err
	}
	ones, _ := subnet.Mask.Size()
	if !subnet.Contains(h.IP) {
		return fmt.Errorf("host %s: %s is outside %s", h.Name, h.IP, subnet)
	}
	if _, err := os.Stat("/var/run/netns/" + h.Name); err != nil {
		if err := run("ip", "netns", "add", h.Name); err != nil {
			return err
		}
	}
	veth := t.veth(h.Name)
	if len(veth) > 15 {
		return fmt.Errorf("host %s: veth name %s is longer than 15 characters", h.Name, veth)
	}
	if !linkExists(veth, "") {
		if err := run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.Name); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"ip", "link", "set", veth, "master", t.Bridge, "up"},
		{"ip", "-n", h.Name, "link", "set", "lo", "up"},
		{"ip", "-n", h.Name, "addr", "replace", fmt.Sprintf("%s/%d", h.IP, ones), "dev", "eth0"},
		{"ip", "-n", h.Name, "link", "set", "eth0", "up"},
		{"ip", "-n", h.Name, "route", "replace", "default", "via", gw.String()},
	}
	if h.PodCIDR != nil {
		steps = append(steps, []string{"ip", "route", "replace", h.PodCIDR.String(), "via", h.IP.String()})
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// DeleteHost removes the namespace (which takes its veth pair with it) and
// the route to its pod CIDR. A missing namespace is not an error.
func (t Topology) DeleteHost(h Host) error {
	var errs []error
	if h.PodCIDR != nil {
		if err := run("ip", "route", "del", h.PodCIDR.String()); err != nil && !strings.Contains(err.Error(), "No such process") {
			errs = append(errs, err)
		}
	}
	if linkExists(t.veth(h.Name), "") {
		errs = append(errs, run("ip", "link", "del", t.veth(h.Name)))
	}
	if _, err := os.Stat("/var/run/netns/" + h.Name); err == nil {
		errs = append(errs, run("ip", "netns", "del", h.Name))
	}
	return errors.Join(errs...)
}

// DeleteBridge removes the forward rules and the bridge. IPv4 forwarding is
// left on: other software on the machine may rely on it.
func (t Topology) DeleteBridge() error {
	var errs []error
	for run("iptables", "-w", "-C", "FORWARD", "-j", t.Chain) == nil {
		if err := run("iptables", "-w", "-D", "FORWARD", "-j", t.Chain); err != nil {
			errs = append(errs, err)
			break
		}
	}
	if run("iptables", "-w", "-L", t.Chain, "-n") == nil {
		errs = append(errs, run("iptables", "-w", "-F", t.Chain), run("iptables", "-w", "-X", t.Chain))
	}
	if linkExists(t.Bridge, "") {
		errs = append(errs, run("ip", "link", "del", t.Bridge))
	}
	if t.ServiceSubnet != "" {
		if out, _ := exec.Command("ip", "route", "show", t.ServiceSubnet).Output(); len(strings.TrimSpace(string(out))) > 0 {
			errs = append(errs, run("ip", "route", "del", "unreachable", t.ServiceSubnet))
		}
	}
	return errors.Join(errs...)
}

func (t Topology) veth(host string) string { return t.VethPrefix + host }

func linkExists(name, netns string) bool {
	args := []string{"link", "show", name}
	if netns != "" {
		args = append([]string{"-n", netns}, args...)
	}
	return exec.Command("ip", args...).Run() == nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Ensure creates the bridge and every host.
func (t Topology) Ensure(hosts ...Host) error {
	if err := t.EnsureBridge(); err != nil {
		return err
	}
	for _, h := range hosts {
		if err := t.EnsureHost(h); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes every host, then the bridge, going on past errors.
func (t Topology) Delete(hosts ...Host) error {
	var errs []error
	for _, h := range hosts {
		errs = append(errs, t.DeleteHost(h))
	}
	return errors.Join(append(errs, t.DeleteBridge())...)
}
