package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/localenv"
	"github.com/marina-platform/marina/internal/testenv"
	"github.com/marina-platform/marina/operators/controlplane/engine"
	"github.com/marina-platform/marina/operators/register/dispatch"
	"github.com/marina-platform/marina/operators/register/join"
)

// federationComponents are the engine images a federation that propagates
// workloads needs: the Cluster API, the controllers that push Works to
// members, the scheduler that places them and the webhook.
var federationComponents = []string{"karmada-aggregated-apiserver", "karmada-controller-manager", "karmada-scheduler", "karmada-webhook"}

// TestRealEngineAcrossDataCenters runs the whole promise on the real
// engine, for each release whose images MARINA_ENGINE_IMAGES holds: a
// control plane in each of two data centers, a member onboarded in data
// center 1 and joined by Marina to both (Karmada's own status controller
// reports it Ready in each), a PropagationPolicy authored once in a
// PolicySet of data center 1 and synced to both, and a Deployment made
// through each federation API server running in the member. One engine
// dispatches to the member, data center 1's, and the member's copy is
// left alone at steady state; data center 2's holds back. With data
// center 1 stopped, data center 2's takes over once the member's lease
// lapses, and a change made through its control plane reaches the member;
// data center 1 started again gets dispatching back. Taking the member
// out leaves in it nothing of the join.
func TestRealEngineAcrossDataCenters(t *testing.T) {
	releases := engineReleases(t, federationComponents)
	if len(env.DataCenters()) < 2 {
		t.Fatalf("the environment has %d data centers; this test needs two", len(env.DataCenters()))
	}
	for _, r := range releases {
		t.Run(r.Checked, func(t *testing.T) { testEngineAcrossDataCenters(t, r) })
	}
}

// fedSite is one data center of TestRealEngineAcrossDataCenters.
type fedSite struct {
	dc   localenv.DataCenter
	mgmt client.Client
	cp   *marinav1alpha1.ControlPlane
	fed  client.Client
}

func testEngineAcrossDataCenters(t *testing.T, r engine.Release) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	ns := localenv.MembersNamespace
	label := map[string]string{"e2e": "engine-federation"}
	envCA, err := env.CA()
	if err != nil {
		t.Fatal(err)
	}
	small := corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")}}
	var sites []*fedSite
	for _, dc := range env.DataCenters()[:2] {
		s := &fedSite{dc: dc, mgmt: mgmtClient(t, dc.Kubeconfig())}
		if s.cp, err = env.ControlPlane(dc, ns, "e2e-fed"); err != nil {
			t.Fatal(err)
		}
		s.cp.Labels = label
		s.cp.Spec.Version = r.Checked
		if s.cp.Spec.CRDs.HTTP, err = env.KarmadaCRDs(r.Checked); err != nil {
			t.Fatal(err)
		}
		s.cp.Spec.DeletionPolicy = marinav1alpha1.DeletionPolicyDelete
		c := &s.cp.Spec.Components
		for _, o := range []*marinav1alpha1.OptionalComponentSpec{&c.AggregatedAPIServer, &c.ControllerManager, &c.Scheduler.OptionalComponentSpec, &c.Webhook} {
			o.Enabled = ptr.To(true)
			o.Resources = small
		}
		mustCreate(ctx, t, s.mgmt, s.cp)
		t.Cleanup(func() { deleteAndWait(t, s.mgmt, s.cp) })
		sites = append(sites, s)
	}
	start := time.Now()
	connect := func(s *fedSite) {
		waitReady(ctx, t, s.mgmt, s.cp, 5*time.Minute)
		s.fed = federationClient(ctx, t, s.mgmt, s.dc, s.cp, envCA.Cert)
	}
	for _, s := range sites {
		connect(s)
	}
	t.Logf("%s: both control planes Ready, every engine component running, %s after create", r.Checked, time.Since(start).Round(time.Second))
	dc1, dc2 := sites[0], sites[1]

	// The member, onboarded in data center 1 only; its RegistrationPolicy
	// is replicated to data center 2, whose register operator joins it
	// there.
	m := dc1.dc.Members[0]
	rp := &marinav1alpha1.RegistrationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "e2e-fed"},
		Spec: marinav1alpha1.RegistrationPolicySpec{
			Sources: marinav1alpha1.RegistrationSources{ClusterAPI: &marinav1alpha1.ClusterAPISource{
				Selector: metav1.LabelSelector{MatchLabels: map[string]string{"cluster.x-k8s.io/cluster-name": m.Cluster.Name}},
			}},
			ControlPlaneSelector: metav1.LabelSelector{MatchLabels: label},
		}}
	start = time.Now()
	mustCreate(ctx, t, dc1.mgmt, rp)
	rpGone := false
	t.Cleanup(func() {
		if !rpGone {
			deleteAndWait(t, dc1.mgmt, rp)
		}
	})
	for _, s := range sites {
		waitMember(ctx, t, s.mgmt, m.Cluster.Name, "joined in "+s.dc.Name, func(mc *marinav1alpha1.MemberCluster) bool {
			return meta.IsStatusConditionTrue(mc.Status.Conditions, marinav1alpha1.ConditionReady) && mc.Status.JoinedControlPlanes == 1
		})
		waitFor(ctx, t, s.dc.Name+": the engine's own status controller reports Cluster "+m.Cluster.Name+" Ready", func() bool {
			return engineClusterReady(ctx, s.fed, m.Cluster.Name) == ""
		})
	}
	t.Logf("%s: member %s joined by Marina to both data centers' control planes, Ready in Karmada's Cluster status of each, %s after its policy", r.Checked, m.Cluster.Name, time.Since(start).Round(100*time.Millisecond))

	// The PropagationPolicy, authored once in data center 1.
	apps := "e2e-fed-apps"
	ps := &marinav1alpha1.PolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "e2e-fed"},
		Spec: marinav1alpha1.PolicySetSpec{
			Sources: []marinav1alpha1.PolicySource{{Inline: testenv.Inline(t, namespaceManifest(apps), map[string]any{
				"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
				"metadata": map[string]any{"namespace": apps, "name": "web"},
				"spec": map[string]any{
					"resourceSelectors": []any{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}},
					"placement":         map[string]any{"clusterAffinity": map[string]any{"clusterNames": []any{m.Cluster.Name}}},
				},
			})}},
			ControlPlaneSelector: metav1.LabelSelector{MatchLabels: label},
		}}
	start = time.Now()
	mustCreate(ctx, t, dc1.mgmt, ps)
	t.Cleanup(func() { deleteAndWait(t, dc1.mgmt, ps) })
	for _, s := range sites {
		waitFor(ctx, t, s.dc.Name+": the synced PropagationPolicy", func() bool {
			return s.fed.Get(ctx, client.ObjectKey{Namespace: apps, Name: "web"}, policyObject(apps, "web")) == nil
		})
	}
	t.Logf("%s: the PolicySet's PropagationPolicy in both control planes %s after create", r.Checked, time.Since(start).Round(100*time.Millisecond))

	// The workload, made through each federation API server as a
	// platform's delivery pipeline would.
	member := mgmtClient(t, m.Cluster.AdminKubeconfig())
	start = time.Now()
	for _, s := range sites {
		mustCreate(ctx, t, s.fed, webDeployment(apps, "1"))
	}
	t.Cleanup(func() {
		for _, s := range sites {
			_ = s.fed.Delete(context.Background(), webDeployment(apps, ""))
		}
	})
	waitFor(ctx, t, "Deployment web, revision 1, available in member "+m.Cluster.Name, func() bool {
		return memberWeb(ctx, member, apps, "1") == ""
	})
	t.Logf("%s: Deployment web available in member %s %s after it was made in both control planes", r.Checked, m.Cluster.Name, time.Since(start).Round(100*time.Millisecond))
	t.Logf("%s: member's Deployment web: %s", r.Checked, karmadaMarks(ctx, t, member, apps))
	// One engine dispatches to the member, dc1's (the member's own data
	// center); dc2's holds the same policy but holds back. Two engines
	// dispatching would rewrite each other's copy many times a second.
	dc1ID, dc2ID := dispatch.HolderID(dc1.dc.Name, ns, dc1.cp.Name), dispatch.HolderID(dc2.dc.Name, ns, dc2.cp.Name)
	waitDispatcher(ctx, t, sites, m.Cluster.Name, apps, dc1ID)
	writes, works := writesTo(ctx, t, m.Cluster.AdminKubeconfig(), apps, 30*time.Second)
	t.Logf("%s: member's Deployment web written %d times in 30 s of steady state, by Works %v", r.Checked, writes, works)
	if writes > 3 {
		t.Errorf("%s: the member's unchanged Deployment was written %d times in 30 s (by Works %v): more than one engine dispatches to it", r.Checked, writes, works)
	}

	t.Run("data center 1 stopped: a change through data center 2 reaches the member", func(t *testing.T) {
		startAgain := stopDataCenter(ctx, t, dc1.dc.Name)
		t.Logf("%s stopped: its management cluster and its control plane", dc1.dc.Name)
		start := time.Now()
		setRevision(ctx, t, dc2.fed, apps, "2")
		// dc2 takes over once the member's lease, which dc1 no longer
		// renews, lapses.
		waitDispatcher(ctx, t, sites[1:], m.Cluster.Name, apps, dc2ID)
		t.Logf("%s: with dc1 down, dc2's control plane dispatches to the member %s after the change", r.Checked, time.Since(start).Round(100*time.Millisecond))
		waitFor(ctx, t, "revision 2, made through dc2, available in member "+m.Cluster.Name, func() bool {
			return memberWeb(ctx, member, apps, "2") == ""
		})
		t.Logf("%s: with dc1 down, revision 2 made through dc2's control plane available in the member %s later", r.Checked, time.Since(start).Round(100*time.Millisecond))
		if msg := engineClusterReady(ctx, dc2.fed, m.Cluster.Name); msg != "" {
			t.Errorf("dc2: Cluster %s: %s", m.Cluster.Name, msg)
		}
		writes, works := writesTo(ctx, t, m.Cluster.AdminKubeconfig(), apps, 30*time.Second)
		t.Logf("%s: with dc1 down, member's Deployment web written %d times in 30 s, by Works %v", r.Checked, writes, works)

		// Data center 1 again; the pipeline brings its control plane's
		// Deployment to the same revision.
		upStart := time.Now()
		startAgain()
		connect(dc1)
		t.Logf("%s started again, its control plane Ready in %s", dc1.dc.Name, time.Since(upStart).Round(time.Second))
		setRevision(ctx, t, dc1.fed, apps, "2")
		waitFor(ctx, t, "dc1's Cluster "+m.Cluster.Name+" Ready again", func() bool {
			return engineClusterReady(ctx, dc1.fed, m.Cluster.Name) == ""
		})
		start = time.Now()
		waitDispatcher(ctx, t, sites, m.Cluster.Name, apps, dc1ID)
		t.Logf("%s: dispatching handed back to dc1's control plane %s after its Cluster was Ready again", r.Checked, time.Since(start).Round(100*time.Millisecond))
		waitFor(ctx, t, "revision 2 still available in member "+m.Cluster.Name, func() bool {
			return memberWeb(ctx, member, apps, "2") == ""
		})
		// Right after the hand-back dc1's engine brings the member's copy
		// to its own Work (its labels, its template's generation) and the
		// member's controllers update the status; then it is quiet.
		writes, works = writesTo(ctx, t, m.Cluster.AdminKubeconfig(), apps, 30*time.Second)
		t.Logf("%s: in the 30 s after the hand-back, member's Deployment web written %d times, by Works %v", r.Checked, writes, works)
		writes, works = writesTo(ctx, t, m.Cluster.AdminKubeconfig(), apps, 30*time.Second)
		t.Logf("%s: in the 30 s after those, member's Deployment web written %d times, by Works %v", r.Checked, writes, works)
		if writes > 3 {
			t.Errorf("%s: after the hand-back the member's unchanged Deployment was written %d times in 30 s (by Works %v): more than one engine dispatches to it", r.Checked, writes, works)
		}
	})

	t.Run("taking the member out leaves nothing of the join in it", func(t *testing.T) {
		for _, s := range sites {
			if err := s.fed.Delete(ctx, webDeployment(apps, "")); client.IgnoreNotFound(err) != nil {
				t.Fatal(err)
			}
		}
		waitFor(ctx, t, "Deployment web gone from member "+m.Cluster.Name, func() bool {
			return apierrors.IsNotFound(member.Get(ctx, client.ObjectKey{Namespace: apps, Name: "web"}, &appsv1.Deployment{}))
		})
		start := time.Now()
		deleteAndWait(t, dc1.mgmt, rp)
		rpGone = true
		for _, s := range sites {
			waitFor(ctx, t, s.dc.Name+": Cluster "+m.Cluster.Name+" gone from the control plane", func() bool {
				cl := &unstructured.Unstructured{}
				cl.SetGroupVersionKind(join.ClusterGVK)
				return apierrors.IsNotFound(s.fed.Get(ctx, client.ObjectKey{Name: m.Cluster.Name}, cl))
			})
		}
		waitFor(ctx, t, "nothing of the join left in member "+m.Cluster.Name, func() bool {
			return len(marinaObjectsIn(ctx, t, m)) == 0
		})
		t.Logf("%s: member unjoined from both control planes, nothing of the join left in it, %s after its policy was deleted", r.Checked, time.Since(start).Round(100*time.Millisecond))
	})
}

// webDeployment is the workload: the echo server, one replica, its
// revision in a pod template annotation so that a change rolls it.
func webDeployment(ns, revision string) *appsv1.Deployment {
	labels := map[string]string{"app": "web"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"e2e/revision": revision}},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name: "echo", Image: localenv.EchoImage, ImagePullPolicy: corev1.PullNever,
						Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
					}},
					TerminationGracePeriodSeconds: ptr.To[int64](1),
				},
			},
		},
	}
}

// setRevision changes the workload through one federation API server.
func setRevision(ctx context.Context, t *testing.T, fed client.Client, ns, revision string) {
	t.Helper()
	for range 10 {
		d := &appsv1.Deployment{}
		if err := fed.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d); err != nil {
			t.Fatal(err)
		}
		d.Spec.Template.Annotations["e2e/revision"] = revision
		err := fed.Update(ctx, d)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
	}
	t.Fatal("Deployment web: conflict after 10 tries")
}

// memberWeb says what keeps the member's Deployment from being at
// revision and available; empty when it is.
func memberWeb(ctx context.Context, member client.Client, ns, revision string) string {
	d := &appsv1.Deployment{}
	if err := member.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d); err != nil {
		return err.Error()
	}
	switch {
	case d.Spec.Template.Annotations["e2e/revision"] != revision:
		return "at revision " + d.Spec.Template.Annotations["e2e/revision"]
	case d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != 1 || d.Status.AvailableReplicas != 1 || d.Status.Replicas != 1:
		return fmt.Sprintf("rolling out: %d updated, %d available of %d", d.Status.UpdatedReplicas, d.Status.AvailableReplicas, d.Status.Replicas)
	}
	return ""
}

// engineClusterReady says what keeps the engine's Cluster from Ready in
// its own status (written by Karmada's cluster status controller, not by
// Marina); empty when it is Ready.
func engineClusterReady(ctx context.Context, fed client.Client, name string) string {
	cl := &unstructured.Unstructured{}
	cl.SetGroupVersionKind(join.ClusterGVK)
	if err := fed.Get(ctx, client.ObjectKey{Name: name}, cl); err != nil {
		return err.Error()
	}
	conds, _, _ := unstructured.NestedSlice(cl.Object, "status", "conditions")
	for _, c := range conds {
		c, _ := c.(map[string]any)
		if c["type"] == "Ready" {
			if c["status"] == "True" {
				return ""
			}
			return fmt.Sprintf("Ready=%v %v: %v", c["status"], c["reason"], c["message"])
		}
	}
	return "no Ready condition yet"
}

// karmadaMarks are the engine's labels and annotations on the member's
// Deployment: which control plane's Work placed it.
func karmadaMarks(ctx context.Context, t *testing.T, member client.Client, ns string) string {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := member.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d); err != nil {
		t.Fatal(err)
	}
	var marks []string
	for _, m := range []map[string]string{d.Labels, d.Annotations} {
		for k, v := range m {
			if strings.Contains(k, "karmada.io") {
				marks = append(marks, k+"="+v)
			}
		}
	}
	return fmt.Sprintf("resourceVersion %s, %s", d.ResourceVersion, strings.Join(marks, ", "))
}

// waitDispatcher waits until want dispatches to member and every other
// site's control plane holds back from it: its MemberCluster's
// Dispatching condition says so, and its PropagationPolicy web lists the
// member in spec.suspension.dispatchingOnClusters exactly where it holds
// back.
func waitDispatcher(ctx context.Context, t *testing.T, sites []*fedSite, member, ns, want string) {
	t.Helper()
	for _, s := range sites {
		id := dispatch.HolderID(s.dc.Name, localenv.MembersNamespace, s.cp.Name)
		waitMember(ctx, t, s.mgmt, member, "dispatched to by "+want, func(mc *marinav1alpha1.MemberCluster) bool {
			st := controlPlaneEntry(mc, s.cp.Name)
			return mc.Status.Dispatcher == want && st != nil &&
				meta.IsStatusConditionTrue(st.Conditions, marinav1alpha1.ConditionDispatching) == (id == want)
		})
		waitFor(ctx, t, s.dc.Name+": PropagationPolicy web holds back from "+member+" exactly where another dispatches", func() bool {
			pp := policyObject(ns, "web")
			if s.fed.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, pp) != nil {
				return false
			}
			names, _, _ := unstructured.NestedStringSlice(pp.Object, "spec", "suspension", "dispatchingOnClusters", "clusterNames")
			return slices.Contains(names, member) == (id != want)
		})
	}
}

func controlPlaneEntry(mc *marinav1alpha1.MemberCluster, name string) *marinav1alpha1.MemberControlPlaneStatus {
	for i := range mc.Status.ControlPlanes {
		if mc.Status.ControlPlanes[i].Name == name {
			return &mc.Status.ControlPlanes[i]
		}
	}
	return nil
}

// writesTo watches the member's Deployment web for d and counts its
// writes (new resourceVersions) and the engines' Works that made them,
// with what each changed (spec, status or only metadata)
// (work.karmada.io/permanent-id).
func writesTo(ctx context.Context, t *testing.T, kubeconfig, ns string, d time.Duration) (int, []string) {
	t.Helper()
	deployments := clientset(t, kubeconfig).AppsV1().Deployments(ns)
	cur, err := deployments.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := deployments.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=web", ResourceVersion: cur.ResourceVersion, TimeoutSeconds: ptr.To(int64(d.Seconds()))})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	writes, works := 0, map[string]bool{}
	prev := cur
	for ev := range w.ResultChan() {
		if dep, ok := ev.Object.(*appsv1.Deployment); ok && ev.Type == watch.Modified {
			writes++
			what := "metadata"
			switch {
			case dep.Generation != prev.Generation:
				what = "spec"
			case !equality.Semantic.DeepEqual(dep.Status, prev.Status):
				what = "status"
			}
			works[dep.Labels["work.karmada.io/permanent-id"]+" ("+what+")"] = true
			prev = dep
		}
	}
	return writes, slices.Sorted(maps.Keys(works))
}
