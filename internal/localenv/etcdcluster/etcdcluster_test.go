package etcdcluster

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/marina-platform/marina/internal/localenv/network"
	"github.com/marina-platform/marina/internal/localenv/proc"
	"github.com/marina-platform/marina/internal/testenv"
)

func TestClusterSurvivesOneMemberStopped(t *testing.T) {
	assets := os.Getenv(testenv.AssetsEnv)
	if assets == "" {
		t.Fatalf("%s is not set: run `make test`", testenv.AssetsEnv)
	}
	topo := network.Topology{Bridge: "mtest3", Chain: "MARINA-TEST3-FWD", Gateway: "10.232.0.1/16", PodSubnet: "10.231.0.0/16", VethPrefix: "vx-"}
	host := network.Host{Name: "mt-etcd", IP: net.ParseIP("10.232.0.2")}
	t.Cleanup(func() { _ = topo.Delete(host) })
	if err := topo.Ensure(host); err != nil {
		t.Fatal(err)
	}

	c := Cluster{Name: "mt-etcd", NetNS: host.Name, IP: host.IP, Members: 3, BasePort: 2379, Dir: t.TempDir(), Etcd: filepath.Join(assets, "etcd")}
	t.Cleanup(func() { _ = c.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cli, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "/marina/dc1/cp-a/probe", "before"); err != nil {
		t.Fatal(err)
	}

	// Without a client certificate the cluster refuses to talk: mutual TLS
	// is what lets control planes share it safely.
	noCert, err := c.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	noCert.Certificates = nil
	anonymous, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints()[:1], TLS: noCert, DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer anonymous.Close()
	actx, acancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = anonymous.Get(actx, "/marina/dc1/cp-a/probe")
	acancel()
	if err == nil {
		t.Fatal("read without a client certificate succeeded")
	}

	member1 := c.Processes()[1]
	if err := proc.Stop(member1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/marina/dc1/cp-a/probe", "during"); err != nil {
		t.Fatalf("write with one member stopped: %v", err)
	}
	got, err := cli.Get(ctx, "/marina/dc1/cp-a/probe")
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "during" {
		t.Fatalf("read with one member stopped: %v %v", got, err)
	}
	if n, _ := c.Healthy(ctx); n != 2 {
		t.Errorf("%d members healthy with one stopped, want 2", n)
	}

	if err := c.Start(ctx); err != nil {
		t.Fatalf("restart the stopped member: %v", err)
	}
	if n, _ := c.Healthy(ctx); n != 3 {
		t.Errorf("%d members healthy after restart, want 3", n)
	}
}
