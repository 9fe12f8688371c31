package network

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn with the calling goroutine in the named network namespace:
// sockets fn creates (listeners, dials) belong to that namespace and stay
// there after Do returns. It lets tests and status checks reach addresses
// that only exist inside the environment.
func Do(netns string, fn func() error) error {
	runtime.LockOSThread()
	// The thread is not unlocked on purpose when switching back fails: it
	// would carry the wrong namespace into other goroutines, so the runtime
	// must discard it with this goroutine instead.
	origin, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer origin.Close()
	target, err := os.Open("/var/run/netns/" + netns)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("network namespace %s: %w", netns, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %s: %w", netns, err)
	}
	fnErr := fn()
	if err := unix.Setns(int(origin.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("leave network namespace %s: %w", netns, err)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// DialContext returns a dial function that connects from inside the named
// namespace, for an http.Transport: the transport dials on goroutines of its
// own, which must each enter the namespace rather than rely on the caller's.
// Only IP literals are accepted, so that the dial (socket and connect)
// happens in the calling goroutine and never on a resolver's or a parallel
// dialer's thread outside the namespace.
func DialContext(netns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if net.ParseIP(host) == nil {
			return nil, fmt.Errorf("dial %s in namespace %s: only IP addresses can be dialled from inside a namespace", addr, netns)
		}
		var conn net.Conn
		err = Do(netns, func() (err error) {
			var d net.Dialer
			conn, err = d.DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
}
