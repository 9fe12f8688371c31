// Command marina-dev runs Marina's local multi-data-center environment on
// one machine without Docker: `up`, `down` and `status`. `make up`,
// `make down` and `make status` call it with the binaries they built.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/marina-platform/marina/internal/localenv"
)

const usage = `usage: marina-dev <up|down|status|bench> [flags]

  up      create the environment (idempotent) and wait until it is healthy
  down    stop and remove everything the environment made
  status  show the health of every part and the kubeconfig paths
  bench   time up from nothing, a second up and down; measure memory and
          the controlplane operator (create → Ready, memory, API requests)

flags:
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet("marina-dev "+cmd, flag.ContinueOnError)
	dir := fs.String("dir", localenv.DefaultDir(), "folder of the environment (kubeconfigs at <dir>/<data center>/admin.kubeconfig); $MARINA_LOCAL_DIR")
	dcs := fs.Int("data-centers", 2, "number of data centers (up)")
	members := fs.Int("members", 3, "member clusters per data center; the first has a node (up)")
	binDir := fs.String("bin-dir", "", "folder of the binaries `make up` builds from source: Kubernetes, etcd, cert-manager, Vault, CoreDNS, helm (up)")
	report := fs.String("report", "", "file the Markdown report is written to (bench)")
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage); fs.PrintDefaults() }
	if err := fs.Parse(os.Args[2:]); err != nil {
		os.Exit(2)
	}

	// The controller-runtime client logs nothing this tool does not return
	// as an error; without a logger it would print a warning with a stack.
	ctrllog.SetLogger(logr.Discard())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd {
	case "up":
		err = up(ctx, localenv.Options{DataCenters: *dcs, Members: *members, Dir: *dir, BinDir: *binDir})
	case "bench":
		opts := localenv.Options{DataCenters: *dcs, Members: *members, Dir: *dir, BinDir: *binDir}
		if opts.RepoRoot, err = os.Getwd(); err == nil {
			err = bench(ctx, opts, *report)
		}
	case "down":
		err = down(ctx, *dir)
	case "status":
		err = status(ctx, *dir)
	default:
		fs.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "marina-dev %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func up(ctx context.Context, opts localenv.Options) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root: it creates network namespaces, cgroups and mounts")
	}
	if opts.BinDir == "" {
		return fmt.Errorf("--bin-dir is required; `make up` sets it")
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	opts.RepoRoot = root
	env, err := localenv.New(opts)
	if err != nil {
		return err
	}
	env.Out = os.Stdout
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	fmt.Printf("marina-dev up: %d data centers in %s\n", opts.DataCenters, opts.Dir)
	if err := env.Up(ctx); err != nil {
		return fmt.Errorf("%w\n(`make status` shows what runs; `make down` removes it all)", err)
	}
	return printNext(env)
}

func down(ctx context.Context, dir string) error {
	env, err := localenv.Load(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			fmt.Println("marina-dev down: no environment in", dir)
			return nil
		}
		return err
	}
	env.Out = os.Stdout
	return env.Down(ctx)
}

func status(ctx context.Context, dir string) error {
	env, err := localenv.Load(dir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATA CENTER\tPART\tHEALTHY\tDETAIL")
	healthy := true
	for _, p := range env.Status(ctx) {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", p.DataCenter, p.Name, p.Healthy, p.Detail)
		healthy = healthy && p.Healthy
	}
	_ = tw.Flush()
	fmt.Println()
	for _, dc := range env.DataCenters() {
		fmt.Printf("%s kubeconfig: %s\n", dc.Name, dc.Kubeconfig())
		for _, m := range dc.Members {
			fmt.Printf("%s kubeconfig: %s\n", m.Cluster.Name, m.Cluster.AdminKubeconfig())
		}
	}
	if !healthy {
		return fmt.Errorf("some parts are not healthy")
	}
	return nil
}

func printNext(env *localenv.Env) error {
	dcs := env.DataCenters()
	fmt.Println()
	fmt.Println("Kubeconfigs (stable paths; `make status` lists them again):")
	for _, dc := range dcs {
		fmt.Printf("  %s  %s\n", dc.Name, dc.Kubeconfig())
		for _, m := range dc.Members {
			fmt.Printf("  %s  %s\n", m.Cluster.Name, m.Cluster.AdminKubeconfig())
		}
	}
	etcd := env.ExternalEtcd()
	ca, cert, key := etcd.ClientFiles()
	fmt.Printf("\nExternal etcd (mutual TLS): %s\n  client CA %s\n  client certificate %s, key %s\n",
		strings.Join(etcd.Endpoints(), ","), ca, cert, key)
	v := env.Vault()
	fmt.Printf("Vault dev server (transit engine at %s/, key %s): VAULT_ADDR=%s VAULT_TOKEN=%s\n", v.Mount(), v.Key(), v.URL(), localenv.VaultRootToken)
	fmt.Printf("CRD bundles (the air-gapped HTTP mirror): %s\n", localenv.BundleURL(""))

	// The same ControlPlane the e2e tests start from.
	cp, err := env.ControlPlane(dcs[0], "default", "first")
	if err != nil {
		return err
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cp)
	if err != nil {
		return err
	}
	delete(obj, "status")
	delete(obj["metadata"].(map[string]any), "creationTimestamp")
	pruneEmpty(obj)
	cpYAML, err := yaml.Marshal(obj)
	if err != nil {
		return err
	}
	kubectl := filepath.Join(env.Options().BinDir, "kubectl")
	fmt.Printf(`
Try:
  export KUBECONFIG=%[1]s
  %[2]s get nodes -o wide
  %[2]s -n %[3]s get deployments,pods        # Marina's operators, installed with helm
  %[2]s get clusterissuers,priorityclasses
  %[2]s get clusters.cluster.x-k8s.io -n %[4]s
  %[2]s get datastores           # the shared external etcd, registered once
  %[2]s explain controlplane.spec

A first federation control plane on DataStore %[6]s (the shared external
etcd: Marina gives it a key prefix and an etcd user of its own), with
certificates from the environment's ClusterIssuer %[5]s and the Karmada CRDs
from the mirror:
  cat <<EOF | %[2]s apply -f -
%[7]s  EOF
  %[2]s get cp -A -w             # Ready in about half a minute
  %[2]s -n default get cp first -o jsonpath='{.status.etcd}'   # its prefix and etcd user
  %[2]s -n default get secret first-admin-kubeconfig -o jsonpath='{.data.kubeconfig}' | base64 -d

The admin kubeconfig names the API server's Service, which resolves inside
the cluster; from this machine, reach a pod of it (kubectl -n default get
pods -l app.kubernetes.io/instance=first -o wide) with that name as the TLS
server name.

`+"`make status`"+` shows the health of every part; `+"`make down`"+` removes everything.
`, dcs[0].Kubeconfig(), kubectl, localenv.MarinaNamespace, localenv.MembersNamespace, localenv.ClusterIssuerName,
		localenv.DataStoreName, indent(string(cpYAML), "  "))
	return nil
}

// pruneEmpty removes the empty maps Go's zero values leave in a converted
// object (resources: {}, service: {}), which a person would not write.
func pruneEmpty(m map[string]any) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			pruneEmpty(sub)
			if len(sub) == 0 {
				delete(m, k)
			}
		}
	}
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if line != "" {
			b.WriteString(prefix + line)
		}
	}
	return b.String()
}
