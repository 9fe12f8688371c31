package localenv

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLayoutHasNoCollisions(t *testing.T) {
	for _, size := range []struct{ dcs, members int }{{1, 0}, {2, 3}, {9, 5}} {
		t.Run(fmt.Sprintf("%d data centers, %d members", size.dcs, size.members), func(t *testing.T) {
			e, err := New(Options{DataCenters: size.dcs, Members: size.members, Dir: "/tmp/marina-layout", BinDir: "/bin"})
			if err != nil {
				t.Fatal(err)
			}
			hosts := map[string]bool{SharedHost.Name: true}
			ips := map[string]string{SharedHost.IP.String(): SharedHost.Name}
			pods := map[string]string{}
			for _, dc := range e.DataCenters() {
				for _, h := range dc.Hosts() {
					if hosts[h.Name] {
						t.Errorf("namespace %s used twice", h.Name)
					}
					hosts[h.Name] = true
					if veth := Topology().VethPrefix + h.Name; len(veth) > 15 {
						t.Errorf("veth %s is longer than the kernel's 15 characters", veth)
					}
					if other, ok := ips[h.IP.String()]; ok {
						t.Errorf("%s and %s share %s", h.Name, other, h.IP)
					}
					ips[h.IP.String()] = h.Name
				}
				ports := map[int]string{}
				clusters := append([]Member{{Cluster: dc.Cluster}}, dc.Members...)
				for _, m := range clusters {
					for _, p := range []int{m.Cluster.APIPort, m.Cluster.EtcdPort, m.Cluster.EtcdPort + 1} {
						if other, ok := ports[p]; ok {
							t.Errorf("%s and %s both use port %d in %s", m.Cluster.Name, other, p, dc.Host.Name)
						}
						ports[p] = m.Cluster.Name
					}
				}
				for _, n := range dc.Nodes() {
					if other, ok := pods[n.PodCIDR.String()]; ok {
						t.Errorf("%s and %s share pod subnet %s", n.Name, other, n.PodCIDR)
					}
					pods[n.PodCIDR.String()] = n.Name
				}
			}
		})
	}
}

func TestOptionsAreValidated(t *testing.T) {
	cases := []struct {
		opts Options
		want string
	}{
		{Options{DataCenters: 0, Dir: "/tmp/x", BinDir: "/bin"}, "data centers: 0"},
		{Options{DataCenters: 10, Dir: "/tmp/x", BinDir: "/bin"}, "data centers: 10"},
		{Options{DataCenters: 2, Members: 6, Dir: "/tmp/x", BinDir: "/bin"}, "members: 6"},
		{Options{DataCenters: 2, Dir: "relative", BinDir: "/bin"}, "absolute path"},
		{Options{DataCenters: 2, Dir: "/tmp/x"}, "bin dir"},
	}
	for _, tc := range cases {
		if _, err := New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", tc.opts, err, tc.want)
		}
	}
}

// TestUpRefusesToChangeTheSizeOfARunningEnvironment: down removes what the
// recorded layout names, so up must not record a different one over it.
func TestUpRefusesToChangeTheSizeOfARunningEnvironment(t *testing.T) {
	dir := t.TempDir()
	recorded, _ := json.Marshal(Options{DataCenters: 3, Members: 3, Dir: dir, BinDir: "/bin"})
	if err := os.WriteFile(filepath.Join(dir, "env.json"), recorded, 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{DataCenters: 2, Members: 3, Dir: dir, BinDir: "/bin"})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Up(context.Background())
	if err == nil || !strings.Contains(err.Error(), "make down") {
		t.Fatalf("Up = %v, want a refusal that says to run make down", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "env.json"))
	if string(after) != string(recorded) {
		t.Error("Up overwrote the recorded layout")
	}
}
