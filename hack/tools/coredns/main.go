// Command coredns is CoreDNS, built from github.com/coredns/coredns at the
// version pinned in this module's go.mod, with only the plugins Marina's local
// environment needs: it serves cluster.local from the Kubernetes API and has no
// forward, etcd or cloud plugins, so it cannot send a query off the machine.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

// directives is the plugin chain order, a subsequence of CoreDNS's own
// plugin.cfg (core/dnsserver/zdirectives.go): a plugin sees a query before
// every plugin listed after it. A Corefile naming any other directive (forward,
// for one) fails to load.
var directives = []string{
	"reload",
	"bind",
	"ready",
	"health",
	"errors",
	"log",
	"loadbalance",
	"cache",
	"kubernetes",
	"loop",
}

func main() {
	dnsserver.Directives = directives
	coremain.Run()
}
