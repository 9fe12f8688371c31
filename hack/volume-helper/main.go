// Command volume-helper makes and removes the folders of local-path-provisioner's
// volumes in the local environment. The provisioner runs it in a helper pod on
// the volume's node, with the node's storage folder mounted, as
//
//	volume-helper -p <volume folder> -s <size> -m <Filesystem|Block> -a <create|delete>
//
// (its `setupCommand` and `teardownCommand`). Upstream's default is a busybox
// shell script; the nodes cannot pull busybox, so this static binary does the
// script's two commands: `mkdir -m 0777 -p` and `rm -rf`.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	path := flag.String("p", "", "the volume's folder")
	action := flag.String("a", "", "create or delete")
	flag.String("s", "", "the requested size in bytes (a folder has no size; ignored)")
	mode := flag.String("m", "Filesystem", "the volume mode")
	flag.Parse()
	if err := run(*path, *action, *mode); err != nil {
		fmt.Fprintln(os.Stderr, "volume-helper:", err)
		os.Exit(1)
	}
}

func run(path, action, mode string) error {
	// The provisioner passes <mounted storage folder>/<volume name>; anything
	// else (a relative path, the root, the storage folder itself) is refused
	// rather than created or removed.
	clean := filepath.Clean(path)
	if !filepath.IsAbs(clean) || filepath.Dir(clean) == clean || filepath.Dir(clean) == "/" {
		return fmt.Errorf("refusing volume folder %q: want /<storage folder>/<volume>", path)
	}
	if mode != "Filesystem" {
		return fmt.Errorf("volume mode %q: only Filesystem volumes are folders", mode)
	}
	switch action {
	case "create":
		if err := os.MkdirAll(clean, 0o777); err != nil {
			return err
		}
		// MkdirAll's mode passes through the umask; the volume's user is
		// the pod's, unknown here, so the folder is open to every user as
		// upstream's script makes it.
		if err := os.Chmod(clean, 0o777); err != nil {
			return err
		}
		fmt.Println("created", clean)
	case "delete":
		if err := os.RemoveAll(clean); err != nil {
			return err
		}
		fmt.Println("removed", clean)
	default:
		return errors.New("-a must be create or delete")
	}
	return nil
}
