package network

import (
	"fmt"
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
