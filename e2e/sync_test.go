package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/localenv"
	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/controlplane/component/policysync"
	"github.com/marina-platform/marina/operators/register/dispatch"
	"github.com/marina-platform/marina/operators/register/join"
)

// syncSite is one data center of TestPoliciesAndMembersAcrossDataCenters
// with its two control planes.
type syncSite struct {
	dc   localenv.DataCenter
	mgmt client.Client
	cps  []*marinav1alpha1.ControlPlane
	feds map[string]client.Client
}

// TestPoliciesAndMembersAcrossDataCenters runs the sync operator's promise
// on the local environment: two data centers, two control planes each. A
// PolicySet authored in data center 1 reaches all four control planes (its
// replica in data center 2 is applied there by data center 2's own
// operator); a change follows; a hand edit is reverted, or only reported;
// an object taken out of the set is pruned everywhere. A member onboarded
// in data center 1 is joined to the control planes of both. Then data
// center 1 stops entirely: data center 2 keeps every policy and member and
// goes on serving and taking changes, and data center 1 started again
// converges with no manual step and no duplicate.
func TestPoliciesAndMembersAcrossDataCenters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	dcs := env.DataCenters()
	if len(dcs) < 2 {
		t.Fatalf("the environment has %d data centers; this test needs two", len(dcs))
	}
	ns := localenv.MembersNamespace
	envCA, err := env.CA()
	if err != nil {
		t.Fatal(err)
	}
	var sites []*syncSite
	for _, dc := range dcs[:2] {
		s := &syncSite{dc: dc, mgmt: mgmtClient(t, dc.Kubeconfig()), feds: map[string]client.Client{}}
		for _, name := range []string{"e2e-sync-a", "e2e-sync-b"} {
			cp, err := env.ControlPlane(dc, ns, name)
			if err != nil {
				t.Fatal(err)
			}
			cp.Spec.DeletionPolicy = marinav1alpha1.DeletionPolicyDelete
			cp.Labels = map[string]string{"e2e": "sync"}
			mustCreate(ctx, t, s.mgmt, cp)
			t.Cleanup(func() { deleteAndWait(t, s.mgmt, cp) })
			s.cps = append(s.cps, cp)
		}
		sites = append(sites, s)
	}
	connect := func(s *syncSite) {
		for _, cp := range s.cps {
			waitReady(ctx, t, s.mgmt, cp, 6*time.Minute)
			s.feds[cp.Name] = federationClient(ctx, t, s.mgmt, s.dc, cp, envCA.Cert)
		}
	}
	for _, s := range sites {
		connect(s)
		// The set holds a ConfigMap, which Marina's grant to marina-sync
		// leaves out: each control plane's administrator adds it, as
		// policies/README.md says, and the control plane's own
		// kube-controller-manager folds it into marina-sync's role.
		for _, fed := range s.feds {
			mustCreate(ctx, t, fed, &rbacv1.ClusterRole{
				ObjectMeta: metav1.ObjectMeta{Name: "e2e-sync-configmaps", Labels: map[string]string{policysync.AggregateLabel: "true"}},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
					Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}}},
			})
		}
	}
	dc1, dc2 := sites[0], sites[1]

	t.Run("marina-sync is not an administrator of the control planes", func(t *testing.T) {
		cp := dc1.cps[0]
		sc := federationClientAs(ctx, t, dc1.mgmt, dc1.dc, cp, envCA.Cert, "syncKubeconfigSecretRef", func(s *marinav1alpha1.ControlPlaneStatus) *marinav1alpha1.SecretKeyReference {
			return s.SyncKubeconfigSecretRef
		})
		err := sc.List(ctx, &corev1.SecretList{}, client.InNamespace("karmada-cluster"))
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: marina-sync's kubeconfig lists the members' credential Secrets: %v; want Forbidden", cp.Name, err)
		}
		// RBAC lets it write Roles in every namespace; the control
		// plane's admission policy keeps it out of Kubernetes' and the
		// engine's own.
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "e2e-sync-reserved"}}
		err = sc.Create(ctx, role)
		if err == nil {
			_ = dc1.feds[cp.Name].Delete(ctx, role)
		}
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), policysync.ScopeName) {
			t.Errorf("%s: marina-sync's kubeconfig creating a Role in kube-system: %v; want Forbidden by %s", cp.Name, err, policysync.ScopeName)
		}
	})

	// everywhere waits until every control plane of the sites passes ok,
	// and says how long that took.
	everywhere := func(what string, sites []*syncSite, ok func(fed client.Client) (string, bool)) time.Duration {
		t.Helper()
		start := time.Now()
		for _, s := range sites {
			for name, fed := range s.feds {
				deadline := time.Now().Add(3 * time.Minute)
				for {
					msg, done := ok(fed)
					if done {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s in %s/%s: not after 3 minutes: %s", what, s.dc.Name, name, msg)
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
		}
		return time.Since(start).Round(100 * time.Millisecond)
	}
	setting := func(want string) func(client.Client) (string, bool) {
		return func(fed client.Client) (string, bool) {
			cm := &corev1.ConfigMap{}
			err := fed.Get(ctx, client.ObjectKey{Namespace: "e2e-sync-apps", Name: "settings"}, cm)
			switch {
			case want == "" && apierrors.IsNotFound(err):
				return "gone", true
			case err != nil:
				return err.Error(), false
			}
			return cm.Data["v"], cm.Data["v"] == want
		}
	}

	// The PolicySet, authored in data center 1.
	ps := &marinav1alpha1.PolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "e2e-sync-dc1"},
		Spec: marinav1alpha1.PolicySetSpec{
			Sources:              []marinav1alpha1.PolicySource{{Inline: syncObjects(t, "1", true)}},
			ControlPlaneSelector: metav1.LabelSelector{MatchLabels: map[string]string{"e2e": "sync"}},
		}}
	mustCreate(ctx, t, dc1.mgmt, ps)
	t.Cleanup(func() { deleteAndWait(t, dc1.mgmt, ps) })
	took := everywhere("the PolicySet's objects", sites, setting("1"))
	t.Logf("a new PolicySet in dc1: in all four control planes of both data centers in %s", took)
	everywhere("the engine's ClusterPropagationPolicy", sites, func(fed client.Client) (string, bool) {
		cpp := &unstructured.Unstructured{}
		cpp.SetAPIVersion("policy.karmada.io/v1alpha1")
		cpp.SetKind("ClusterPropagationPolicy")
		if err := fed.Get(ctx, client.ObjectKey{Name: "e2e-sync-baseline"}, cpp); err != nil {
			return err.Error(), false
		}
		return "", true
	})

	t.Run("a change reaches all four control planes, with one checksum", func(t *testing.T) {
		updatePolicySet(ctx, t, dc1.mgmt, ps, func(ps *marinav1alpha1.PolicySet) { ps.Spec.Sources[0].Inline = syncObjects(t, "2", true) })
		took := everywhere("the change", sites, setting("2"))
		t.Logf("a change in dc1: in all four control planes in %s", took)
		var sums []string
		waitFor(ctx, t, "both data centers' PolicySets report the same revision in every target", func() bool {
			sums = nil
			for _, s := range sites {
				got := &marinav1alpha1.PolicySet{}
				if err := s.mgmt.Get(ctx, client.ObjectKeyFromObject(ps), got); err != nil {
					return false
				}
				sums = append(sums, got.Status.Checksum)
				if len(got.Status.Targets) != 2 {
					return false
				}
				for _, tg := range got.Status.Targets {
					if tg.Revision != got.Status.Checksum {
						return false
					}
				}
			}
			return sums[0] != "" && sums[0] == sums[1]
		})
		t.Logf("checksum %s in dc1 and dc2", sums[0])
	})

	t.Run("a hand edit in data center 2 is reverted", func(t *testing.T) {
		fed := dc2.feds["e2e-sync-b"]
		editSetting(ctx, t, fed, "hand-edited")
		waitFor(ctx, t, "the hand edit reverted", func() bool { _, ok := setting("2")(fed); return ok })
	})

	t.Run("in Report mode it is only reported", func(t *testing.T) {
		updatePolicySet(ctx, t, dc1.mgmt, ps, func(ps *marinav1alpha1.PolicySet) { ps.Spec.DriftMode = marinav1alpha1.DriftModeReport })
		waitFor(ctx, t, "the replica in dc2 in Report mode", func() bool {
			got := &marinav1alpha1.PolicySet{}
			return dc2.mgmt.Get(ctx, client.ObjectKeyFromObject(ps), got) == nil && got.Spec.DriftMode == marinav1alpha1.DriftModeReport
		})
		fed := dc2.feds["e2e-sync-a"]
		editSetting(ctx, t, fed, "hand-edited")
		waitFor(ctx, t, "the drift reported on dc2's replica", func() bool {
			got := &marinav1alpha1.PolicySet{}
			if dc2.mgmt.Get(ctx, client.ObjectKeyFromObject(ps), got) != nil {
				return false
			}
			for _, tg := range got.Status.Targets {
				if tg.Name == "e2e-sync-a" && strings.Contains(strings.Join(tg.DriftedObjects, ","), "settings") {
					return true
				}
			}
			return false
		})
		if v, _ := setting("")(fed); v != "hand-edited" {
			t.Errorf("in Report mode the edit was changed to %q", v)
		}
		updatePolicySet(ctx, t, dc1.mgmt, ps, func(ps *marinav1alpha1.PolicySet) { ps.Spec.DriftMode = marinav1alpha1.DriftModeCorrect })
		waitFor(ctx, t, "back in Correct mode, the edit reverted", func() bool { _, ok := setting("2")(fed); return ok })
	})

	t.Run("an object taken out of the set is pruned everywhere", func(t *testing.T) {
		updatePolicySet(ctx, t, dc1.mgmt, ps, func(ps *marinav1alpha1.PolicySet) { ps.Spec.Sources[0].Inline = syncObjects(t, "", true) })
		took := everywhere("the ConfigMap pruned", sites, setting(""))
		t.Logf("an object taken out in dc1: pruned in all four control planes in %s", took)
	})

	// A member onboarded in data center 1, joined to both data centers'
	// control planes.
	m := dc1.dc.Members[0]
	rp := &marinav1alpha1.RegistrationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "e2e-sync"},
		Spec: marinav1alpha1.RegistrationPolicySpec{
			Sources: marinav1alpha1.RegistrationSources{ClusterAPI: &marinav1alpha1.ClusterAPISource{
				Selector: metav1.LabelSelector{MatchLabels: map[string]string{"cluster.x-k8s.io/cluster-name": m.Cluster.Name}},
			}},
			ControlPlaneSelector: metav1.LabelSelector{MatchLabels: map[string]string{"e2e": "sync"}},
		}}
	mustCreate(ctx, t, dc1.mgmt, rp)
	t.Cleanup(func() { deleteAndWait(t, dc1.mgmt, rp) })
	joinedEverywhere := func(what string) {
		t.Helper()
		start := time.Now()
		for _, s := range sites {
			waitMember(ctx, t, s.mgmt, m.Cluster.Name, "joined to both of "+s.dc.Name+"'s control planes "+what, func(mc *marinav1alpha1.MemberCluster) bool {
				return meta.IsStatusConditionTrue(mc.Status.Conditions, marinav1alpha1.ConditionReady) && mc.Status.JoinedControlPlanes == 2
			})
			for name, fed := range s.feds {
				cl := &unstructured.Unstructured{}
				cl.SetGroupVersionKind(join.ClusterGVK)
				if err := fed.Get(ctx, client.ObjectKey{Name: m.Cluster.Name}, cl); err != nil {
					t.Errorf("%s/%s: the engine's Cluster %s: %v", s.dc.Name, name, m.Cluster.Name, err)
				}
			}
		}
		t.Logf("member %s joined to all four control planes %s, %s", m.Cluster.Name, what, time.Since(start).Round(time.Second))
	}
	joinedEverywhere("after its policy")
	// One of the four dispatches to it, the member's own data center's
	// first; the other three hold back.
	preferred := dispatch.HolderID(dc1.dc.Name, ns, "e2e-sync-a")
	took = oneDispatcher(ctx, t, sites, m.Cluster.Name, "e2e-sync-baseline", func(id string) bool { return id == preferred })
	t.Logf("member %s: one dispatcher of four, %s, %s after joining everywhere", m.Cluster.Name, preferred, took)

	t.Run("data center 1 stopped: data center 2 keeps working, and data center 1 comes back", func(t *testing.T) {
		stopped := time.Now()
		startAgain := stopDataCenter(ctx, t, dc1.dc.Name)
		t.Logf("%s stopped: its management cluster, cert-manager and node (with its control planes' pods)", dc1.dc.Name)

		waitFor(ctx, t, "dc2's Peer dc1 not Reachable", func() bool {
			p := &marinav1alpha1.Peer{}
			if dc2.mgmt.Get(ctx, client.ObjectKey{Name: dc1.dc.Name}, p) != nil {
				return false
			}
			c := meta.FindStatusCondition(p.Status.Conditions, marinav1alpha1.ConditionReachable)
			return c != nil && c.Status == metav1.ConditionFalse && c.Reason == marinav1alpha1.ReasonPeerUnreachable
		})
		t.Logf("dc2 reports its Peer dc1 unreachable %s after the stop", time.Since(stopped).Round(time.Second))
		// Every policy and member is still in data center 2's control
		// planes, which still serve.
		everywhere("the namespace and ClusterPropagationPolicy", []*syncSite{dc2}, func(fed client.Client) (string, bool) {
			cpp := &unstructured.Unstructured{}
			cpp.SetAPIVersion("policy.karmada.io/v1alpha1")
			cpp.SetKind("ClusterPropagationPolicy")
			if err := fed.Get(ctx, client.ObjectKey{Name: "e2e-sync-baseline"}, cpp); err != nil {
				return err.Error(), false
			}
			if err := fed.Get(ctx, client.ObjectKey{Name: "e2e-sync-apps"}, &corev1.Namespace{}); err != nil {
				return err.Error(), false
			}
			cl := &unstructured.Unstructured{}
			cl.SetGroupVersionKind(join.ClusterGVK)
			if err := fed.Get(ctx, client.ObjectKey{Name: m.Cluster.Name}, cl); err != nil {
				return err.Error(), false
			}
			return "", true
		})
		waitMember(ctx, t, dc2.mgmt, m.Cluster.Name, "Ready in dc2 with dc1 down", func(mc *marinav1alpha1.MemberCluster) bool {
			return meta.IsStatusConditionTrue(mc.Status.Conditions, marinav1alpha1.ConditionReady) && mc.Status.JoinedControlPlanes == 2
		})
		// The member's dispatcher was lost with dc1: once its lease
		// lapses, one of dc2's control planes takes over.
		oneDispatcher(ctx, t, []*syncSite{dc2}, m.Cluster.Name, "e2e-sync-baseline", func(id string) bool { return strings.HasPrefix(id, dc2.dc.Name+"/") })
		t.Logf("a control plane of dc2 dispatches to member %s %s after dc1 stopped", m.Cluster.Name, time.Since(stopped).Round(time.Second))
		// A policy authored in data center 2 meanwhile applies there.
		own := &marinav1alpha1.PolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "e2e-sync-dc2"},
			Spec: marinav1alpha1.PolicySetSpec{
				Sources:              []marinav1alpha1.PolicySource{{Inline: testenv.Inline(t, namespaceManifest("e2e-sync-from-dc2"))}},
				ControlPlaneSelector: metav1.LabelSelector{MatchLabels: map[string]string{"e2e": "sync"}},
			}}
		mustCreate(ctx, t, dc2.mgmt, own)
		t.Cleanup(func() { deleteAndWait(t, dc2.mgmt, own) })
		fromDC2 := func(fed client.Client) (string, bool) {
			err := fed.Get(ctx, client.ObjectKey{Name: "e2e-sync-from-dc2"}, &corev1.Namespace{})
			if err != nil {
				return err.Error(), false
			}
			return "", true
		}
		took := everywhere("dc2's own PolicySet", []*syncSite{dc2}, fromDC2)
		t.Logf("a PolicySet made in dc2 while dc1 is down: in dc2's control planes in %s", took)

		// Data center 1 again: `make up` starts what is stopped.
		upStart := time.Now()
		startAgain()
		connect(dc1)
		t.Logf("%s started again and its control planes Ready in %s", dc1.dc.Name, time.Since(upStart).Round(time.Second))
		took = everywhere("dc2's PolicySet, replicated to dc1", []*syncSite{dc1}, fromDC2)
		t.Logf("dc2's PolicySet reached dc1's control planes %s after they were Ready", took)
		everywhere("dc1's PolicySet still in place", sites, func(fed client.Client) (string, bool) {
			return "", fed.Get(ctx, client.ObjectKey{Name: "e2e-sync-apps"}, &corev1.Namespace{}) == nil
		})
		joinedEverywhere("after dc1 came back")
		took = oneDispatcher(ctx, t, sites, m.Cluster.Name, "e2e-sync-baseline", func(id string) bool { return id == preferred })
		t.Logf("member %s handed back to %s %s after dc1's members were joined again", m.Cluster.Name, preferred, took)
		for _, s := range sites {
			waitFor(ctx, t, s.dc.Name+"'s Peers Ready", func() bool {
				peers := &marinav1alpha1.PeerList{}
				if s.mgmt.List(ctx, peers) != nil || len(peers.Items) == 0 {
					return false
				}
				for _, p := range peers.Items {
					if !meta.IsStatusConditionTrue(p.Status.Conditions, marinav1alpha1.ConditionReady) {
						return false
					}
				}
				return true
			})
		}
		// No duplicate: each data center holds the other's objects once,
		// as replicas, and its own as originals.
		for _, s := range sites {
			for _, l := range []client.ObjectList{&marinav1alpha1.PolicySetList{}, &marinav1alpha1.MemberClusterList{}} {
				if err := s.mgmt.List(ctx, l, client.InNamespace(ns)); err != nil {
					t.Fatal(err)
				}
				seen := map[string]string{}
				_ = meta.EachListItem(l, func(o runtime.Object) error {
					obj := o.(client.Object)
					if strings.HasPrefix(obj.GetName(), "e2e-sync") || obj.GetName() == m.Cluster.Name {
						seen[obj.GetName()] = obj.GetLabels()[marinav1alpha1.LabelOriginDataCenter]
					}
					return nil
				})
				t.Logf("%s holds %T: %v (name: origin, empty for its own)", s.dc.Name, l, seen)
			}
		}
		got := &marinav1alpha1.PolicySet{}
		if err := dc1.mgmt.Get(ctx, client.ObjectKeyFromObject(own), got); err != nil || got.Labels[marinav1alpha1.LabelOriginDataCenter] != dc2.dc.Name {
			t.Errorf("dc1's copy of e2e-sync-dc2: %v, labels %v; want a replica from dc2", err, got.Labels)
		}
		if err := dc2.mgmt.Get(ctx, client.ObjectKeyFromObject(ps), got); err != nil || got.Labels[marinav1alpha1.LabelOriginDataCenter] != dc1.dc.Name {
			t.Errorf("dc2's copy of e2e-sync-dc1: %v, labels %v; want a replica from dc1", err, got.Labels)
		}
	})
}

// oneDispatcher waits until exactly one control plane of the sites
// dispatches to member (its Dispatching condition True, in the
// MemberCluster of its own data center), that one is the one want picks,
// and the ClusterPropagationPolicy policy holds back from the member in
// every other control plane and not in that one. It says how long that
// took.
func oneDispatcher(ctx context.Context, t *testing.T, sites []*syncSite, member, policy string, want func(id string) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		last = ""
		var dispatchers []string
		for _, s := range sites {
			mc := &marinav1alpha1.MemberCluster{}
			if err := s.mgmt.Get(ctx, client.ObjectKey{Namespace: localenv.MembersNamespace, Name: member}, mc); err != nil {
				last += fmt.Sprintf("%s: %v; ", s.dc.Name, err)
				continue
			}
			for _, st := range mc.Status.ControlPlanes {
				c := meta.FindStatusCondition(st.Conditions, marinav1alpha1.ConditionDispatching)
				if c == nil {
					last += fmt.Sprintf("%s/%s: no Dispatching condition; ", s.dc.Name, st.Name)
					continue
				}
				last += fmt.Sprintf("%s/%s: Dispatching=%s %s; ", s.dc.Name, st.Name, c.Status, c.Reason)
				id := dispatch.HolderID(s.dc.Name, mc.Namespace, st.Name)
				if c.Status == metav1.ConditionTrue {
					dispatchers = append(dispatchers, id)
				}
				cpp := &unstructured.Unstructured{}
				cpp.SetAPIVersion("policy.karmada.io/v1alpha1")
				cpp.SetKind("ClusterPropagationPolicy")
				fed := s.feds[st.Name]
				if fed == nil {
					continue
				}
				if err := fed.Get(ctx, client.ObjectKey{Name: policy}, cpp); err != nil {
					last += err.Error() + "; "
					dispatchers = append(dispatchers, "unknown")
					continue
				}
				names, _, _ := unstructured.NestedStringSlice(cpp.Object, "spec", "suspension", "dispatchingOnClusters", "clusterNames")
				if holds := slices.Contains(names, member); holds == (c.Status == metav1.ConditionTrue) {
					last += fmt.Sprintf("%s/%s: its %s holds back from %v; ", s.dc.Name, st.Name, policy, names)
					dispatchers = append(dispatchers, "mismatch")
				}
			}
		}
		if len(dispatchers) == 1 && want(dispatchers[0]) {
			return time.Since(start).Round(100 * time.Millisecond)
		}
		last = fmt.Sprintf("dispatchers %v: %s", dispatchers, last)
		time.Sleep(time.Second)
	}
	t.Fatalf("member %s: not one dispatcher as wanted after 3 minutes: %s", member, last)
	return 0
}

// syncObjects is the PolicySet's inline content: a namespace, the engine's
// ClusterPropagationPolicy for it and, when setting is not empty, a
// ConfigMap holding it.
func syncObjects(t *testing.T, setting string, withPolicy bool) []runtime.RawExtension {
	objs := []map[string]any{namespaceManifest("e2e-sync-apps")}
	if withPolicy {
		objs = append(objs, map[string]any{
			"apiVersion": "policy.karmada.io/v1alpha1", "kind": "ClusterPropagationPolicy",
			"metadata": map[string]any{"name": "e2e-sync-baseline"},
			"spec": map[string]any{"resourceSelectors": []any{map[string]any{
				"apiVersion": "v1", "kind": "Namespace", "name": "e2e-sync-apps"}}},
		})
	}
	if setting != "" {
		objs = append(objs, map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"namespace": "e2e-sync-apps", "name": "settings"},
			"data":     map[string]any{"v": setting},
		})
	}
	return testenv.Inline(t, objs...)
}

func namespaceManifest(name string) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}
}

// updatePolicySet changes a PolicySet, retrying on a conflict with the
// operator's own writes.
func updatePolicySet(ctx context.Context, t *testing.T, c client.Client, ps *marinav1alpha1.PolicySet, change func(*marinav1alpha1.PolicySet)) {
	t.Helper()
	for range 10 {
		got := &marinav1alpha1.PolicySet{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(ps), got); err != nil {
			t.Fatal(err)
		}
		change(got)
		err := c.Update(ctx, got)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
	}
	t.Fatalf("PolicySet %s: update kept conflicting", ps.Name)
}

// editSetting changes the ConfigMap in a control plane as a person would.
func editSetting(ctx context.Context, t *testing.T, fed client.Client, v string) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "e2e-sync-apps", Name: "settings"}}
	if err := fed.Patch(ctx, cm, client.RawPatch("application/merge-patch+json", []byte(`{"data":{"v":"`+v+`"}}`))); err != nil {
		t.Fatal(err)
	}
}

// stopDataCenter stops a data center of the environment entirely: its
// management cluster, cert-manager and node, with its control planes'
// pods. startAgain starts it (`make up` starts what is stopped); the
// test's end does if the test did not.
func stopDataCenter(ctx context.Context, t *testing.T, name string) (startAgain func()) {
	t.Helper()
	if err := env.StopDataCenter(ctx, name); err != nil {
		t.Fatal(err)
	}
	started := false
	t.Cleanup(func() {
		if !started {
			upCtx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			if err := env.Up(upCtx); err != nil {
				t.Errorf("start %s again: %v", name, err)
			}
		}
	})
	return func() {
		t.Helper()
		if err := env.Up(ctx); err != nil {
			t.Fatalf("start %s again: %v", name, err)
		}
		started = true
	}
}
