package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/localenv"
	"github.com/marina-platform/marina/internal/localenv/proc"
	"github.com/marina-platform/marina/operators/register/controller"
	"github.com/marina-platform/marina/operators/register/join"
	"github.com/marina-platform/marina/operators/sync/peer"
)

// TestRegistration onboards the members of both data centers with a
// RegistrationPolicy in each, as their Cluster API Clusters are
// initialized (the environment plays the infrastructure provider). Each
// data center's policy and members are replicated to the other, whose
// register operator joins them to its own control plane: every member ends
// up in both data centers' control planes. Then it takes one out by
// deleting its Cluster API Cluster, and stops and starts another's API
// server.
func TestRegistration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	ns := localenv.MembersNamespace
	envCA, err := env.CA()
	if err != nil {
		t.Fatal(err)
	}
	type site struct {
		dc   localenv.DataCenter
		mgmt client.Client
		cp   *marinav1alpha1.ControlPlane
		fed  client.Client
	}
	var sites []*site
	for _, dc := range env.DataCenters() {
		s := &site{dc: dc, mgmt: mgmtClient(t, dc.Kubeconfig())}
		var err error
		if s.cp, err = env.ControlPlane(dc, ns, "e2e-register"); err != nil {
			t.Fatal(err)
		}
		s.cp.Spec.DeletionPolicy = marinav1alpha1.DeletionPolicyDelete
		s.cp.Labels = map[string]string{"e2e": "registration"}
		mustCreate(ctx, t, s.mgmt, s.cp)
		t.Cleanup(func() { deleteAndWait(t, s.mgmt, s.cp) })
		sites = append(sites, s)
	}
	for _, s := range sites {
		waitReady(ctx, t, s.mgmt, s.cp, 5*time.Minute)
		s.fed = federationClient(ctx, t, s.mgmt, s.dc, s.cp, envCA.Cert)
	}

	// One policy per data center: its own members, into the control
	// planes it selects, which its replica selects in the other data
	// center too.
	for _, s := range sites {
		rp := &marinav1alpha1.RegistrationPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "e2e-register-" + s.dc.Name},
			Spec: marinav1alpha1.RegistrationPolicySpec{
				Sources: marinav1alpha1.RegistrationSources{ClusterAPI: &marinav1alpha1.ClusterAPISource{
					Selector: metav1.LabelSelector{MatchLabels: map[string]string{localenv.LabelDataCenter: s.dc.Name}},
				}},
				ControlPlaneSelector: metav1.LabelSelector{MatchLabels: map[string]string{"e2e": "registration"}},
				Template:             marinav1alpha1.ClusterProperties{Provider: "marina-local", Region: s.dc.Name},
			},
		}
		mustCreate(ctx, t, s.mgmt, rp)
		t.Cleanup(func() { deleteAndWait(t, s.mgmt, rp) })
	}
	for _, s := range sites {
		start := time.Now()
		for _, m := range s.dc.Members {
			waitMember(ctx, t, s.mgmt, m.Cluster.Name, "Ready", func(mc *marinav1alpha1.MemberCluster) bool {
				return meta.IsStatusConditionTrue(mc.Status.Conditions, marinav1alpha1.ConditionReady)
			})
			cl := &unstructured.Unstructured{}
			cl.SetGroupVersionKind(join.ClusterGVK)
			if err := s.fed.Get(ctx, client.ObjectKey{Name: m.Cluster.Name}, cl); err != nil {
				t.Errorf("%s: the engine's Cluster %s: %v", s.dc.Name, m.Cluster.Name, err)
				continue
			}
			if ep, _, _ := unstructured.NestedString(cl.Object, "spec", "apiEndpoint"); ep != m.Cluster.Server() {
				t.Errorf("Cluster %s apiEndpoint %q, want %q", m.Cluster.Name, ep, m.Cluster.Server())
			}
			if region, _, _ := unstructured.NestedString(cl.Object, "spec", "region"); region != s.dc.Name {
				t.Errorf("Cluster %s region %q, want the policy's %q", m.Cluster.Name, region, s.dc.Name)
			}
		}
		t.Logf("%s: %d members joined and Ready %s after their policy", s.dc.Name, len(s.dc.Members), time.Since(start).Round(time.Second))
	}
	// Replicated: each data center's members, joined to the other's
	// control plane by the other's register operator.
	for _, s := range sites {
		for _, o := range sites {
			if o == s {
				continue
			}
			start := time.Now()
			for _, m := range s.dc.Members {
				mc := waitMember(ctx, t, o.mgmt, m.Cluster.Name, "Ready as a replica in "+o.dc.Name, func(mc *marinav1alpha1.MemberCluster) bool {
					return meta.IsStatusConditionTrue(mc.Status.Conditions, marinav1alpha1.ConditionReady) && mc.Status.JoinedControlPlanes == 1
				})
				if mc.Labels[marinav1alpha1.LabelOriginDataCenter] != s.dc.Name || mc.Spec.ControlPlanes[0].Name != o.cp.Name {
					t.Errorf("%s: MemberCluster %s labels %v, control planes %v: want a replica from %s joined to %s", o.dc.Name, m.Cluster.Name, mc.Labels, mc.Spec.ControlPlanes, s.dc.Name, o.cp.Name)
				}
				cl := &unstructured.Unstructured{}
				cl.SetGroupVersionKind(join.ClusterGVK)
				if err := o.fed.Get(ctx, client.ObjectKey{Name: m.Cluster.Name}, cl); err != nil {
					t.Errorf("%s: the engine's Cluster %s of %s's member: %v", o.dc.Name, m.Cluster.Name, s.dc.Name, err)
				}
			}
			t.Logf("%s's %d members joined and Ready in %s's control plane too, %s after that", s.dc.Name, len(s.dc.Members), o.dc.Name, time.Since(start).Round(time.Second))
		}
	}

	t.Run("a rotation keeps a watch through the stored credentials working", func(t *testing.T) {
		s := sites[0]
		m := s.dc.Members[0]
		stored := func() (token, ca []byte) {
			sec := &corev1.Secret{}
			if err := s.fed.Get(ctx, client.ObjectKey{Namespace: join.Namespace, Name: m.Cluster.Name}, sec); err != nil {
				t.Fatal(err)
			}
			return sec.Data["token"], sec.Data["caBundle"]
		}
		oldToken, ca := stored()
		asEngine := func(token []byte) kubernetes.Interface {
			return kubernetes.NewForConfigOrDie(&rest.Config{Host: m.Cluster.Server(), BearerToken: string(token), TLSClientConfig: rest.TLSClientConfig{CAData: ca}})
		}
		w, err := asEngine(oldToken).CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("watch with the stored token: %v", err)
		}
		defer w.Stop()

		mc := &marinav1alpha1.MemberCluster{}
		if err := s.mgmt.Get(ctx, client.ObjectKey{Namespace: ns, Name: m.Cluster.Name}, mc); err != nil {
			t.Fatal(err)
		}
		before := mc.DeepCopy()
		if mc.Annotations == nil {
			mc.Annotations = map[string]string{}
		}
		mc.Annotations[controller.AnnotationRotateTokens] = time.Now().UTC().Format(time.RFC3339)
		if err := s.mgmt.Patch(ctx, mc, client.MergeFrom(before)); err != nil {
			t.Fatal(err)
		}
		var newToken []byte
		waitFor(ctx, t, "a new token in the control plane", func() bool {
			newToken, _ = stored()
			return string(newToken) != string(oldToken)
		})
		if _, err := asEngine(newToken).CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("the new token: %v", err)
		}
		// Revoked only --token-revoke-after (10 min) later.
		if _, err := asEngine(oldToken).CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("the replaced token within its grace period: %v", err)
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("e2e-rotation-%d", time.Now().Unix())}}
		memberAdmin := mgmtClient(t, m.Cluster.AdminKubeconfig())
		mustCreate(ctx, t, memberAdmin, cm)
		t.Cleanup(func() { _ = memberAdmin.Delete(context.Background(), cm) })
		deadline := time.After(30 * time.Second)
		for {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					t.Fatal("the watch opened before the rotation closed")
				}
				if got, isCM := ev.Object.(*corev1.ConfigMap); isCM && got.Name == cm.Name {
					return
				}
			case <-deadline:
				t.Fatal("the watch opened before the rotation delivered nothing after it")
			}
		}
	})

	t.Run("a Cluster API Cluster deleted is unjoined and leaves nothing behind", func(t *testing.T) {
		s := sites[0]
		m := s.dc.Members[len(s.dc.Members)-1]
		t.Cleanup(func() {
			if err := env.RegisterMember(context.Background(), s.dc, m); err != nil {
				t.Errorf("register %s again: %v", m.Cluster.Name, err)
			}
		})
		capi := &unstructured.Unstructured{}
		capi.SetAPIVersion("cluster.x-k8s.io/v1beta2")
		capi.SetKind("Cluster")
		capi.SetNamespace(ns)
		capi.SetName(m.Cluster.Name)
		if err := s.mgmt.Delete(ctx, capi); err != nil {
			t.Fatal(err)
		}
		waitFor(ctx, t, "MemberCluster "+m.Cluster.Name+" gone", func() bool {
			err := s.mgmt.Get(ctx, client.ObjectKey{Namespace: ns, Name: m.Cluster.Name}, &marinav1alpha1.MemberCluster{})
			return apierrors.IsNotFound(err)
		})
		cl := &unstructured.Unstructured{}
		cl.SetGroupVersionKind(join.ClusterGVK)
		if err := s.fed.Get(ctx, client.ObjectKey{Name: m.Cluster.Name}, cl); !apierrors.IsNotFound(err) {
			t.Errorf("the engine's Cluster %s after unjoin: %v, want NotFound", m.Cluster.Name, err)
		}
		for _, name := range []string{m.Cluster.Name, m.Cluster.Name + "-impersonator"} {
			if err := s.fed.Get(ctx, client.ObjectKey{Namespace: join.Namespace, Name: name}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
				t.Errorf("control plane Secret %s after unjoin: %v, want NotFound", name, err)
			}
		}
		// And in the other data center, where its replica was joined.
		o := sites[1]
		waitFor(ctx, t, "its replica in "+o.dc.Name+" gone, with its kubeconfig", func() bool {
			err := o.mgmt.Get(ctx, client.ObjectKey{Namespace: ns, Name: m.Cluster.Name}, &marinav1alpha1.MemberCluster{})
			errSecret := o.mgmt.Get(ctx, client.ObjectKey{Namespace: ns, Name: peer.SecretName(m.Cluster.Name)}, &corev1.Secret{})
			return apierrors.IsNotFound(err) && apierrors.IsNotFound(errSecret)
		})
		if err := o.fed.Get(ctx, client.ObjectKey{Name: m.Cluster.Name}, cl); !apierrors.IsNotFound(err) {
			t.Errorf("%s: the engine's Cluster %s after unjoin: %v, want NotFound", o.dc.Name, m.Cluster.Name, err)
		}
		for _, name := range []string{m.Cluster.Name, m.Cluster.Name + "-impersonator"} {
			if err := o.fed.Get(ctx, client.ObjectKey{Namespace: join.Namespace, Name: name}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
				t.Errorf("%s: control plane Secret %s after unjoin: %v, want NotFound", o.dc.Name, name, err)
			}
		}
		if left := marinaObjectsIn(ctx, t, m); len(left) > 0 {
			t.Errorf("left in the member after unjoin from both data centers: %v", left)
		}
	})

	t.Run("a member whose API server stops is NotReady, then Ready again", func(t *testing.T) {
		s := sites[1]
		m := s.dc.Members[0]
		var apiserver proc.Spec
		for _, p := range m.Cluster.Processes() {
			if p.Name == "kube-apiserver" {
				apiserver = p
			}
		}
		t.Cleanup(func() { _ = m.Cluster.Start(context.Background()) })
		if err := proc.Stop(apiserver, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		mc := waitMember(ctx, t, s.mgmt, m.Cluster.Name, "NotReady", func(mc *marinav1alpha1.MemberCluster) bool {
			c := meta.FindStatusCondition(mc.Status.Conditions, marinav1alpha1.ConditionReady)
			return c != nil && c.Status == metav1.ConditionFalse && c.Reason == marinav1alpha1.ReasonClusterUnreachable
		})
		if mc.Status.JoinedControlPlanes != 1 {
			t.Errorf("an unreachable member was unjoined: %d control planes joined", mc.Status.JoinedControlPlanes)
		}
		if err := m.Cluster.Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitMember(ctx, t, s.mgmt, m.Cluster.Name, "Ready again", func(mc *marinav1alpha1.MemberCluster) bool {
			return meta.IsStatusConditionTrue(mc.Status.Conditions, marinav1alpha1.ConditionReady)
		})
	})
}

// waitMember polls a MemberCluster of the members namespace until ok.
func waitMember(ctx context.Context, t *testing.T, c client.Client, name, what string, ok func(*marinav1alpha1.MemberCluster) bool) *marinav1alpha1.MemberCluster {
	t.Helper()
	mc := &marinav1alpha1.MemberCluster{}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: localenv.MembersNamespace, Name: name}, mc); err == nil && ok(mc) {
			return mc
		}
		time.Sleep(time.Second)
	}
	var conds []string
	for _, c := range mc.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s %s: %s", c.Type, c.Status, c.Reason, c.Message))
	}
	for _, st := range mc.Status.ControlPlanes {
		for _, c := range st.Conditions {
			conds = append(conds, fmt.Sprintf("%s/%s=%s %s: %s", st.Name, c.Type, c.Status, c.Reason, c.Message))
		}
	}
	t.Fatalf("MemberCluster %s: not %s after 3 minutes: %s", name, what, strings.Join(conds, "; "))
	return nil
}

// marinaObjectsIn lists what a Marina join leaves in a member: anything
// labelled as Marina's in namespace karmada-cluster (its token Secrets,
// ServiceAccounts, dispatch lease), and its RBAC.
func marinaObjectsIn(ctx context.Context, t *testing.T, m localenv.Member) []string {
	t.Helper()
	c := mgmtClient(t, m.Cluster.AdminKubeconfig())
	mine := client.MatchingLabels{marinav1alpha1.LabelManagedBy: marinav1alpha1.ManagedByValue}
	var out []string
	for _, l := range []client.ObjectList{&corev1.SecretList{}, &corev1.ServiceAccountList{}, &rbacv1.ClusterRoleList{}, &rbacv1.ClusterRoleBindingList{}, &coordinationv1.LeaseList{}} {
		if err := c.List(ctx, l, mine); err != nil {
			t.Fatal(err)
		}
		items, _ := meta.ExtractList(l)
		for _, o := range items {
			obj := o.(client.Object)
			out = append(out, fmt.Sprintf("%T %s/%s", o, obj.GetNamespace(), obj.GetName()))
		}
	}
	ns := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: join.Namespace}, ns); err == nil && ns.DeletionTimestamp == nil {
		out = append(out, "namespace "+join.Namespace)
	}
	slices.Sort(out)
	return out
}

// deleteAndWait deletes an object and waits until it is gone, so that
// the next test starts clean.
func deleteAndWait(t *testing.T, c client.Client, obj client.Object) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
		t.Errorf("delete %T %s: %v", obj, obj.GetName(), err)
		return
	}
	for ctx.Err() == nil {
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); apierrors.IsNotFound(err) {
			return
		}
		time.Sleep(time.Second)
	}
	t.Errorf("%T %s not gone after 3 minutes", obj, obj.GetName())
}
