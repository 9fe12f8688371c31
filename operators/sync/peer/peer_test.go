package peer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/register/policy"
	"github.com/marina-platform/marina/operators/sync/peer"
)

const ns = "platform"

// dc is one data center's management cluster, running the Peer reconciler
// and the register operator's RegistrationPolicy reconciler, as its own
// marina-sync and marina-register would.
type dc struct {
	name string
	env  *testenv.Env
	c    client.Client
	// kubeconfig reaches it as an administrator.
	kubeconfig []byte
}

func startDC(t *testing.T, name string) *dc {
	t.Helper()
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	dir := t.TempDir()
	// The garbage collector removes a replica's ConfigMaps and Secrets
	// with it, as in any cluster.
	stop, err := env.StartControllerManager(dir, "garbagecollector")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop() })
	path, err := env.KubeconfigFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return &dc{name: name, env: env, c: env.Client, kubeconfig: data}
}

// run starts the reconcilers of d, with a Peer for each of peers.
func (d *dc) run(t *testing.T, peers ...*dc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := ctrl.NewManager(d.env.Config, ctrl.Options{Scheme: d.env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		// Two data centers' operators in one process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}})
	if err != nil {
		t.Fatal(err)
	}
	r := &peer.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("marina-sync"), DataCenter: d.name,
		Resync: 500 * time.Millisecond, RetryAfter: 200 * time.Millisecond}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	if err := (&policy.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("marina-register"), DataCenter: d.name}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for _, p := range peers {
		d.peer(t, p.name, p.kubeconfig)
	}
}

// peer makes a Peer of name whose kubeconfig Secret holds kubeconfig.
func (d *dc) peer(t *testing.T, name string, kubeconfig []byte) {
	t.Helper()
	create(t, d.c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "peer-" + name}, Data: map[string][]byte{"kubeconfig": kubeconfig}})
	create(t, d.c, &marinav1alpha1.Peer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: marinav1alpha1.PeerSpec{
		DataCenter:          name,
		KubeconfigSecretRef: marinav1alpha1.NamespacedSecretKeyReference{Namespace: ns, SecretKeyReference: marinav1alpha1.SecretKeyReference{Name: "peer-" + name}},
	}})
}

func create(t *testing.T, c client.Client, o client.Object) {
	t.Helper()
	if err := c.Create(t.Context(), o); err != nil {
		t.Fatalf("create %T %s: %v", o, o.GetName(), err)
	}
}

// eventually polls cond for up to 30 s and fails with its last message.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (string, bool)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		msg, ok := cond(ctx)
		if msg != last && msg != "" {
			t.Logf("%s: %s", what, msg)
		}
		last = msg
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: %s", what, last)
	}
}

func peerCondition(t *testing.T, d *dc, name, typ string) func(context.Context) *metav1.Condition {
	return func(ctx context.Context) *metav1.Condition {
		p := &marinav1alpha1.Peer{}
		if err := d.c.Get(ctx, client.ObjectKey{Name: name}, p); err != nil {
			t.Logf("Peer %s: %v", name, err)
			return nil
		}
		return meta.FindStatusCondition(p.Status.Conditions, typ)
	}
}

func namespaceObject(name string) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}
}

// TestReplication runs two data centers' management clusters, each
// replicating to the other, and checks what reaches the peer, what it
// refuses to overwrite, what goes when the original goes, and that a quiet
// federation costs no writes.
func TestReplication(t *testing.T) {
	ctrllog.SetLogger(testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	dc1, dc2 := startDC(t, "dc1"), startDC(t, "dc2")
	dc1.run(t, dc2)
	dc2.run(t, dc1)
	ctx := t.Context()

	// dc2's own control planes, which the replicated RegistrationPolicy
	// selects there.
	for _, name := range []string{"fed-b", "fed-a"} {
		cp := testenv.ControlPlane(ns, name, "dc2")
		cp.Labels = map[string]string{"tier": "federation"}
		create(t, dc2.c, cp)
	}
	other := testenv.ControlPlane(ns, "fed-other", "dc2")
	create(t, dc2.c, other)

	// Authored in dc1: a PolicySet that reads a ConfigMap, a
	// RegistrationPolicy and the MemberCluster it made (by hand here: the
	// policy's sources are dc1's), with its kubeconfig Secret.
	create(t, dc1.c, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tenants"},
		Data: map[string]string{"tenants.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tenant-a\n"}})
	baseline := &marinav1alpha1.PolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "baseline", Labels: map[string]string{"team": "platform"}},
		Spec: marinav1alpha1.PolicySetSpec{
			Sources: []marinav1alpha1.PolicySource{
				{Inline: testenv.Inline(t, namespaceObject("platform-apps"))},
				{ConfigMapRef: &marinav1alpha1.ConfigMapReference{Name: "tenants"}},
			},
			ControlPlaneSelector: metav1.LabelSelector{MatchLabels: map[string]string{"tier": "federation"}},
		}}
	create(t, dc1.c, baseline)
	rp := &marinav1alpha1.RegistrationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "onboard"},
		Spec: marinav1alpha1.RegistrationPolicySpec{
			Sources:              marinav1alpha1.RegistrationSources{ClusterAPI: &marinav1alpha1.ClusterAPISource{}},
			ControlPlaneSelector: metav1.LabelSelector{MatchLabels: map[string]string{"tier": "federation"}},
			Template:             marinav1alpha1.ClusterProperties{Region: "eu-west", Provider: "openstack"},
		}}
	create(t, dc1.c, rp)
	const memberToken = "member-secret-token-do-not-leak"
	memberKubeconfig := []byte(fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: m\n  cluster:\n    server: https://10.210.1.20:6443\nusers:\n- name: m\n  user:\n    token: %s\ncontexts:\n- name: m\n  context:\n    cluster: m\n    user: m\ncurrent-context: m\n", memberToken))
	create(t, dc1.c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "member-1-kubeconfig"}, Data: map[string][]byte{"value": memberKubeconfig}})
	member := &marinav1alpha1.MemberCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "member-1",
		Labels: map[string]string{policy.LabelRegistrationPolicy: "onboard"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: marinav1alpha1.GroupVersion.String(), Kind: "RegistrationPolicy", Name: "onboard",
			UID: rp.UID, Controller: ptr.To(true)}}},
		Spec: marinav1alpha1.MemberClusterSpec{ClusterRef: &marinav1alpha1.ClusterReference{Name: "member-1"},
			ControlPlanes:     []marinav1alpha1.ControlPlaneReference{{Name: "dc1-fed"}},
			ClusterProperties: rp.Spec.Template}}
	create(t, dc1.c, member)

	t.Run("replicas reach the peer", func(t *testing.T) {
		eventually(t, "the PolicySet's replica in dc2", func(ctx context.Context) (string, bool) {
			got := &marinav1alpha1.PolicySet{}
			if err := dc2.c.Get(ctx, client.ObjectKeyFromObject(baseline), got); err != nil {
				return err.Error(), false
			}
			if got.Labels[marinav1alpha1.LabelOriginDataCenter] != "dc1" || got.Labels["team"] != "platform" {
				return fmt.Sprintf("labels %v", got.Labels), false
			}
			if want := "PolicySet platform/baseline in data center dc1"; got.Annotations[marinav1alpha1.AnnotationOrigin] != want {
				return fmt.Sprintf("annotation %s=%q, want %q", marinav1alpha1.AnnotationOrigin, got.Annotations[marinav1alpha1.AnnotationOrigin], want), false
			}
			if len(got.Spec.Sources) != 2 || got.Spec.Sources[1].ConfigMapRef == nil {
				return fmt.Sprintf("spec %+v", got.Spec), false
			}
			return "", true
		})
		eventually(t, "the ConfigMap it reads, owned by the replica", func(ctx context.Context) (string, bool) {
			cm := &corev1.ConfigMap{}
			if err := dc2.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "tenants"}, cm); err != nil {
				return err.Error(), false
			}
			if !strings.Contains(cm.Data["tenants.yaml"], "tenant-a") || len(cm.OwnerReferences) != 1 || cm.OwnerReferences[0].Kind != "PolicySet" {
				return fmt.Sprintf("data %v, owners %v", cm.Data, cm.OwnerReferences), false
			}
			return "", true
		})
		eventually(t, "the MemberCluster's replica, with a kubeconfig Secret and the control planes dc2's replica policy selects", func(ctx context.Context) (string, bool) {
			got := &marinav1alpha1.MemberCluster{}
			if err := dc2.c.Get(ctx, client.ObjectKeyFromObject(member), got); err != nil {
				return err.Error(), false
			}
			if got.Spec.ClusterRef != nil || got.Spec.KubeconfigSecretRef == nil || got.Spec.KubeconfigSecretRef.Name != peer.SecretName("member-1") {
				return fmt.Sprintf("credentials %+v %+v", got.Spec.ClusterRef, got.Spec.KubeconfigSecretRef), false
			}
			if got.Spec.Region != "eu-west" || len(got.OwnerReferences) != 0 {
				return fmt.Sprintf("region %q, owners %v", got.Spec.Region, got.OwnerReferences), false
			}
			if fmt.Sprint(got.Spec.ControlPlanes) != "[{fed-a} {fed-b}]" {
				return fmt.Sprintf("control planes %v, want fed-a and fed-b of dc2", got.Spec.ControlPlanes), false
			}
			s := &corev1.Secret{}
			if err := dc2.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: peer.SecretName("member-1")}, s); err != nil {
				return err.Error(), false
			}
			if string(s.Data["kubeconfig"]) != string(memberKubeconfig) || len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != got.UID {
				return fmt.Sprintf("Secret keys %d, owners %v", len(s.Data), s.OwnerReferences), false
			}
			return "", true
		})
		eventually(t, "dc2's replica RegistrationPolicy reports its members", func(ctx context.Context) (string, bool) {
			got := &marinav1alpha1.RegistrationPolicy{}
			if err := dc2.c.Get(ctx, client.ObjectKeyFromObject(rp), got); err != nil {
				return err.Error(), false
			}
			c := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionReady)
			if c == nil || c.Status != metav1.ConditionTrue || got.Status.MatchedClusters != 1 || got.Status.MatchedControlPlanes != 2 {
				return fmt.Sprintf("status %+v", got.Status), false
			}
			return "", true
		})
		eventually(t, "Peer dc2 in dc1 is Ready with 3 replicas", func(ctx context.Context) (string, bool) {
			p := &marinav1alpha1.Peer{}
			if err := dc1.c.Get(ctx, client.ObjectKey{Name: "dc2"}, p); err != nil {
				return err.Error(), false
			}
			c := meta.FindStatusCondition(p.Status.Conditions, marinav1alpha1.ConditionReady)
			if c == nil || c.Status != metav1.ConditionTrue || p.Status.ReplicatedObjects != 3 || p.Status.LastSyncTime == nil {
				return fmt.Sprintf("status %+v", p.Status), false
			}
			return "", true
		})
		// dc2 authored nothing, so replicates nothing back.
		for _, l := range []client.ObjectList{&marinav1alpha1.PolicySetList{}, &marinav1alpha1.MemberClusterList{}} {
			if err := dc1.c.List(ctx, l, client.HasLabels{marinav1alpha1.LabelOriginDataCenter}); err != nil || meta.LenList(l) != 0 {
				t.Errorf("dc1 holds %d replicas (%v); dc2 authored none", meta.LenList(l), err)
			}
		}
	})

	t.Run("a quiet federation costs no writes", func(t *testing.T) {
		before := versions(t, dc2.c)
		peerBefore := &marinav1alpha1.Peer{}
		if err := dc1.c.Get(ctx, client.ObjectKey{Name: "dc2"}, peerBefore); err != nil {
			t.Fatal(err)
		}
		// Ten resync periods.
		time.Sleep(5 * time.Second)
		if after := versions(t, dc2.c); after != before {
			t.Errorf("replicas in dc2 were written while nothing changed:\nbefore %s\nafter  %s", before, after)
		}
		peerAfter := &marinav1alpha1.Peer{}
		if err := dc1.c.Get(ctx, client.ObjectKey{Name: "dc2"}, peerAfter); err != nil {
			t.Fatal(err)
		}
		if peerAfter.ResourceVersion != peerBefore.ResourceVersion {
			t.Errorf("Peer dc2's status was written while nothing changed")
		}
	})

	t.Run("changes follow the original", func(t *testing.T) {
		patch := baseline.DeepCopy()
		if err := dc1.c.Get(ctx, client.ObjectKeyFromObject(baseline), patch); err != nil {
			t.Fatal(err)
		}
		patch.Spec.DriftMode = marinav1alpha1.DriftModeReport
		delete(patch.Labels, "team")
		if err := dc1.c.Update(ctx, patch); err != nil {
			t.Fatal(err)
		}
		cm := &corev1.ConfigMap{}
		if err := dc1.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "tenants"}, cm); err != nil {
			t.Fatal(err)
		}
		cm.Data["tenants.yaml"] += "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: tenant-b\n"
		if err := dc1.c.Update(ctx, cm); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the replica's spec and ConfigMap follow", func(ctx context.Context) (string, bool) {
			got := &marinav1alpha1.PolicySet{}
			if err := dc2.c.Get(ctx, client.ObjectKeyFromObject(baseline), got); err != nil {
				return err.Error(), false
			}
			cm := &corev1.ConfigMap{}
			if err := dc2.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "tenants"}, cm); err != nil {
				return err.Error(), false
			}
			_, team := got.Labels["team"]
			return fmt.Sprintf("drift mode %q, labels %v, ConfigMap %q", got.Spec.DriftMode, got.Labels, cm.Data["tenants.yaml"]),
				got.Spec.DriftMode == marinav1alpha1.DriftModeReport && !team && strings.Contains(cm.Data["tenants.yaml"], "tenant-b")
		})
		// Someone in dc2 edits the replica with rights that pass admission
		// (an administrator; the chart's policy refuses the others): the
		// origin puts it back.
		got := &marinav1alpha1.PolicySet{}
		if err := dc2.c.Get(ctx, client.ObjectKeyFromObject(baseline), got); err != nil {
			t.Fatal(err)
		}
		got.Spec.DriftMode = marinav1alpha1.DriftModeCorrect
		if err := dc2.c.Update(ctx, got); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a hand edit of the replica is reverted", func(ctx context.Context) (string, bool) {
			got := &marinav1alpha1.PolicySet{}
			if err := dc2.c.Get(ctx, client.ObjectKeyFromObject(baseline), got); err != nil {
				return err.Error(), false
			}
			return fmt.Sprintf("drift mode %q", got.Spec.DriftMode), got.Spec.DriftMode == marinav1alpha1.DriftModeReport
		})
	})

	t.Run("a replica's kubeconfig Secret lost in the peer is written again", func(t *testing.T) {
		// Lost past the admission policy (an administrator, an etcd
		// restored without it). The peer's register operator then reports
		// the replica Reachable=False SecretNotFound, as its own tests
		// check; it does not run here, so the test writes that condition
		// as it would.
		name := client.ObjectKey{Namespace: ns, Name: peer.SecretName("member-1")}
		if err := dc2.c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name.Name}}); err != nil {
			t.Fatal(err)
		}
		// A pass over the peer without the signal leaves it missing: the
		// peer's identity cannot read Secrets, and the origin writes none
		// it believes in place.
		time.Sleep(2 * time.Second)
		if err := dc2.c.Get(ctx, name, &corev1.Secret{}); !apierrors.IsNotFound(err) {
			t.Fatalf("the Secret came back before anything said it was missing (%v): the test proves nothing", err)
		}
		got := &marinav1alpha1.MemberCluster{}
		if err := dc2.c.Get(ctx, client.ObjectKeyFromObject(member), got); err != nil {
			t.Fatal(err)
		}
		meta.SetStatusCondition(&got.Status.Conditions, metav1.Condition{Type: marinav1alpha1.ConditionReachable, Status: metav1.ConditionFalse,
			Reason: marinav1alpha1.ReasonSecretNotFound, Message: "the kubeconfig Secret " + name.Name + " does not exist"})
		if err := dc2.c.Status().Update(ctx, got); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the Secret written again, owned by the replica", func(ctx context.Context) (string, bool) {
			s := &corev1.Secret{}
			if err := dc2.c.Get(ctx, name, s); err != nil {
				return err.Error(), false
			}
			if string(s.Data["kubeconfig"]) != string(memberKubeconfig) || len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != got.UID {
				return fmt.Sprintf("Secret keys %d, owners %v", len(s.Data), s.OwnerReferences), false
			}
			return "", true
		})
	})

	t.Run("the same name from two origins is a conflict, not a flap", func(t *testing.T) {
		mine := func(dc string) *marinav1alpha1.PolicySet {
			return &marinav1alpha1.PolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "team", Labels: map[string]string{"author": dc}},
				Spec: marinav1alpha1.PolicySetSpec{
					Sources:              []marinav1alpha1.PolicySource{{Bundle: "baseline"}},
					ControlPlaneSelector: metav1.LabelSelector{MatchLabels: map[string]string{"dc": dc}},
				}}
		}
		// Both made while replication is suspended, so that neither
		// arrives as a replica before the other is made.
		suspend := func(d *dc, peerName string, on bool) {
			p := &marinav1alpha1.Peer{}
			if err := d.c.Get(ctx, client.ObjectKey{Name: peerName}, p); err != nil {
				t.Fatal(err)
			}
			p.Spec.Suspend = on
			if err := d.c.Update(ctx, p); err != nil {
				t.Fatal(err)
			}
			eventually(t, "Peer "+peerName+" in "+d.name+" suspended "+fmt.Sprint(on), func(ctx context.Context) (string, bool) {
				c := peerCondition(t, d, peerName, marinav1alpha1.ConditionSynced)(ctx)
				if c == nil {
					return "no Synced condition", false
				}
				return c.Message, (c.Reason == marinav1alpha1.ReasonSuspended) == on
			})
		}
		suspend(dc1, "dc2", true)
		suspend(dc2, "dc1", true)
		create(t, dc2.c, mine("dc2"))
		create(t, dc1.c, mine("dc1"))
		suspend(dc1, "dc2", false)
		suspend(dc2, "dc1", false)
		for _, side := range []struct{ from, to *dc }{{dc1, dc2}, {dc2, dc1}} {
			eventually(t, "Peer "+side.to.name+" in "+side.from.name+" reports the conflict", func(ctx context.Context) (string, bool) {
				c := peerCondition(t, side.from, side.to.name, marinav1alpha1.ConditionSynced)(ctx)
				if c == nil {
					return "no Synced condition", false
				}
				return c.Message, c.Status == metav1.ConditionFalse && c.Reason == marinav1alpha1.ReasonConflict &&
					strings.Contains(c.Message, "PolicySet platform/team (made there)")
			})
		}
		before := versions(t, dc1.c) + versions(t, dc2.c)
		time.Sleep(3 * time.Second)
		if after := versions(t, dc1.c) + versions(t, dc2.c); after != before {
			t.Errorf("objects were written while the conflict stood:\nbefore %s\nafter  %s", before, after)
		}
		for _, d := range []*dc{dc1, dc2} {
			got := &marinav1alpha1.PolicySet{}
			if err := d.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "team"}, got); err != nil {
				t.Fatal(err)
			}
			if got.Labels["author"] != d.name || got.Labels[marinav1alpha1.LabelOriginDataCenter] != "" {
				t.Errorf("%s's own PolicySet team was overwritten: labels %v", d.name, got.Labels)
			}
		}
		eventually(t, "a Warning Event on the Peer says so", func(ctx context.Context) (string, bool) {
			return eventWith(ctx, dc1.c, "dc2", marinav1alpha1.ReasonConflict, "PolicySet platform/team")
		})
		// Renamed in dc2: both sides in sync again.
		if err := dc2.c.Delete(ctx, mine("dc2")); err != nil {
			t.Fatal(err)
		}
		for _, side := range []struct{ from, to *dc }{{dc1, dc2}, {dc2, dc1}} {
			eventually(t, "Peer "+side.to.name+" in "+side.from.name+" in sync", func(ctx context.Context) (string, bool) {
				c := peerCondition(t, side.from, side.to.name, marinav1alpha1.ConditionSynced)(ctx)
				if c == nil {
					return "no Synced condition", false
				}
				return c.Message, c.Status == metav1.ConditionTrue
			})
		}
	})

	t.Run("an unreachable peer is reported and leaves the others alone", func(t *testing.T) {
		dead := []byte("apiVersion: v1\nkind: Config\nclusters:\n- name: d\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\nusers:\n- name: d\n  user:\n    token: peer-secret-token-do-not-leak\ncontexts:\n- name: d\n  context:\n    cluster: d\n    user: d\ncurrent-context: d\n")
		dc1.peer(t, "dc3", dead)
		eventually(t, "Peer dc3 is not Reachable", func(ctx context.Context) (string, bool) {
			c := peerCondition(t, dc1, "dc3", marinav1alpha1.ConditionReachable)(ctx)
			if c == nil {
				return "no Reachable condition", false
			}
			return c.Message, c.Status == metav1.ConditionFalse && c.Reason == marinav1alpha1.ReasonPeerUnreachable &&
				strings.Contains(c.Message, "data center dc3 at https://127.0.0.1:1")
		})
		eventually(t, "a Warning Event says so", func(ctx context.Context) (string, bool) {
			return eventWith(ctx, dc1.c, "dc3", marinav1alpha1.ReasonPeerUnreachable, "127.0.0.1:1")
		})
		c := peerCondition(t, dc1, "dc2", marinav1alpha1.ConditionReady)(ctx)
		if c == nil || c.Status != metav1.ConditionTrue {
			t.Errorf("Peer dc2 is not Ready next to an unreachable dc3: %+v", c)
		}
	})

	t.Run("deleting an original removes its replica and what goes with it", func(t *testing.T) {
		if err := dc1.c.Delete(ctx, member); err != nil {
			t.Fatal(err)
		}
		if err := dc1.c.Delete(ctx, baseline); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the replicas, their ConfigMap and Secret are gone from dc2", func(ctx context.Context) (string, bool) {
			var left []string
			for _, o := range []client.Object{&marinav1alpha1.MemberCluster{}, &marinav1alpha1.PolicySet{}, &corev1.ConfigMap{}, &corev1.Secret{}} {
				name := map[string]string{"*v1alpha1.MemberCluster": "member-1", "*v1alpha1.PolicySet": "baseline", "*v1.ConfigMap": "tenants", "*v1.Secret": peer.SecretName("member-1")}[fmt.Sprintf("%T", o)]
				if err := dc2.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, o); !apierrors.IsNotFound(err) {
					left = append(left, fmt.Sprintf("%T %s", o, name))
				}
			}
			return fmt.Sprint("left: ", left), len(left) == 0
		})
		// The replica policy stays, as its original does.
		if err := dc2.c.Get(ctx, client.ObjectKeyFromObject(rp), &marinav1alpha1.RegistrationPolicy{}); err != nil {
			t.Errorf("the RegistrationPolicy's replica: %v", err)
		}
	})

	t.Run("credentials never reach status or Events", func(t *testing.T) {
		for _, d := range []*dc{dc1, dc2} {
			peers := &marinav1alpha1.PeerList{}
			evs := &eventsv1.EventList{}
			if err := d.c.List(ctx, peers); err != nil {
				t.Fatal(err)
			}
			if err := d.c.List(ctx, evs); err != nil {
				t.Fatal(err)
			}
			data, _ := json.Marshal([]any{peers, evs})
			for _, secret := range []string{memberToken, "peer-secret-token-do-not-leak"} {
				if strings.Contains(string(data), secret) {
					t.Errorf("%s: a credential appears in Peers' status or Events", d.name)
				}
			}
		}
	})
}

// versions lists the resourceVersions of every replicated kind in c.
func versions(t *testing.T, c client.Client) string {
	t.Helper()
	var b strings.Builder
	for _, l := range []client.ObjectList{&marinav1alpha1.PolicySetList{}, &marinav1alpha1.RegistrationPolicyList{}, &marinav1alpha1.MemberClusterList{}, &corev1.ConfigMapList{}, &corev1.SecretList{}} {
		if err := c.List(t.Context(), l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		_ = meta.EachListItem(l, func(o runtime.Object) error {
			m := o.(client.Object)
			fmt.Fprintf(&b, "%T/%s=%s ", o, m.GetName(), m.GetResourceVersion())
			return nil
		})
	}
	return b.String()
}

// eventWith finds an Event on Peer name with reason whose note has text.
func eventWith(ctx context.Context, c client.Client, name, reason, text string) (string, bool) {
	evs := &eventsv1.EventList{}
	if err := c.List(ctx, evs); err != nil {
		return err.Error(), false
	}
	var seen []string
	for _, e := range evs.Items {
		if e.Regarding.Kind == "Peer" && e.Regarding.Name == name {
			seen = append(seen, e.Reason+": "+e.Note)
			if e.Reason == reason && strings.Contains(e.Note, text) {
				return "", true
			}
		}
	}
	return fmt.Sprintf("events on Peer %s: %v", name, seen), false
}
