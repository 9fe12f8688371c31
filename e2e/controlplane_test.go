package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/kubeconfig"
	"github.com/marina-platform/marina/internal/localenv"
	"github.com/marina-platform/marina/internal/localenv/pki"
	"github.com/marina-platform/marina/operators/controlplane/engine"
)

var mgmtScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = marinav1alpha1.AddToScheme(s)
	_ = apiextensionsv1.AddToScheme(s)
	return s
}()

// TestControlPlanes runs three control planes side by side, two in dc1 (one
// with a custom CA) and one in dc2, all on the shared external etcd, then
// breaks and fixes an input, upgrades one and deletes them all.
func TestControlPlanes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dcs := env.DataCenters()
	dc1, dc2 := dcs[0], dcs[1]
	ns := fmt.Sprintf("e2e-cp-%d", time.Now().Unix()%100000)
	mgmt := map[string]client.Client{dc1.Name: mgmtClient(t, dc1.Kubeconfig()), dc2.Name: mgmtClient(t, dc2.Kubeconfig())}

	// The custom CA, a Secret of the user's.
	ca, err := pki.NewCA("e2e custom CA")
	if err != nil {
		t.Fatal(err)
	}
	caPair, err := ca.KeyPair()
	if err != nil {
		t.Fatal(err)
	}
	for _, dc := range dcs {
		c := mgmt[dc.Name]
		mustCreate(ctx, t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		t.Cleanup(func() { _ = c.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}) })
	}
	mustCreate(ctx, t, mgmt[dc1.Name], &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "custom-ca"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": caPair.CertPEM, "tls.key": caPair.KeyPEM},
	})

	newCP := func(dc localenv.DataCenter, name string) *marinav1alpha1.ControlPlane {
		cp, err := env.ControlPlane(dc, ns, name)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	alpha := newCP(dc1, "alpha")
	alpha.Spec.Certificates = marinav1alpha1.CertificatesSpec{CASecretRef: &marinav1alpha1.SecretReference{Name: "custom-ca"}}
	alpha.Spec.PriorityClassName = "marina-control-plane-critical"
	alpha.Spec.DeletionPolicy = marinav1alpha1.DeletionPolicyDelete
	// A NodePort, so the test reaches the API server through the node as
	// its pods are replaced during the upgrade.
	alpha.Spec.Components.APIServer.Service.Type = corev1.ServiceTypeNodePort
	beta := newCP(dc1, "beta")
	gamma := newCP(dc2, "gamma")
	gamma.Spec.DeletionPolicy = marinav1alpha1.DeletionPolicyDelete
	// delta runs its own etcd on a PersistentVolumeClaim of the default
	// StorageClass, as the README's example does. One member: four control
	// planes and three etcd members overload the two cores this suite is
	// sized for.
	etcdImage, err := env.EtcdImage()
	if err != nil {
		t.Fatal(err)
	}
	delta := newCP(dc2, "delta")
	delta.Spec.Etcd = marinav1alpha1.EtcdSpec{Local: &marinav1alpha1.LocalEtcd{
		Replicas: 1, Image: etcdImage, Storage: marinav1alpha1.EtcdStorage{Type: marinav1alpha1.EtcdStoragePersistentVolumeClaim, Size: ptr.To(resource.MustParse("1Gi"))},
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")}},
	}}
	all := []struct {
		cp *marinav1alpha1.ControlPlane
		dc localenv.DataCenter
	}{{alpha, dc1}, {beta, dc1}, {gamma, dc2}, {delta, dc2}}

	// delta's etcd volume, once bound.
	var deltaVolume *corev1.PersistentVolume

	start := time.Now()
	for _, x := range all {
		mustCreate(ctx, t, mgmt[x.dc.Name], x.cp)
	}
	for _, x := range all {
		waitReady(ctx, t, mgmt[x.dc.Name], x.cp, 5*time.Minute)
		t.Logf("%s/%s Ready %s after creation", x.dc.Name, x.cp.Name, time.Since(start).Round(time.Second))
	}

	// Each answers through its admin kubeconfig, and the serving chain
	// verifies against the issuer's CA: the custom one for alpha.
	envCA, err := env.CA()
	if err != nil {
		t.Fatal(err)
	}
	fed := map[string]client.Client{}
	for _, x := range all {
		root := envCA.Cert
		if x.cp.Name == "alpha" {
			root = ca.Cert
		}
		fed[x.cp.Name] = federationClient(ctx, t, mgmt[x.dc.Name], x.dc, x.cp, root)
	}

	t.Run("data lands under the key prefix", func(t *testing.T) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "e2e-marker"}, Data: map[string]string{"k": "v"}}
		mustCreate(ctx, t, fed["alpha"], cm)
		cli, err := env.ExternalEtcd().Client()
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		key := etcdPrefix(alpha) + "/configmaps/default/e2e-marker"
		resp, err := cli.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 1 {
			t.Errorf("no key %s in the external etcd", key)
		}
		// beta's API server does not see alpha's data.
		if err := fed["beta"].Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
			t.Errorf("beta sees alpha's ConfigMap: %v", err)
		}
	})

	t.Run("local etcd runs", func(t *testing.T) {
		c := mgmt[dc2.Name]
		pods := &corev1.PodList{}
		if err := c.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/instance": "delta", "app.kubernetes.io/component": "etcd"}); err != nil {
			t.Fatal(err)
		}
		ready := 0
		for _, p := range pods.Items {
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		if ready != 1 {
			t.Errorf("%d of %d etcd pods ready, want 1", ready, len(pods.Items))
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "e2e-local-etcd"}}
		mustCreate(ctx, t, fed["delta"], cm)
		if err := fed["delta"].Get(ctx, client.ObjectKeyFromObject(cm), cm); err != nil {
			t.Errorf("delta does not read back what it stored: %v", err)
		}
		deltaVolume = localVolume(ctx, t, c, ns, "delta-etcd-0", dc2)
		t.Logf("delta's etcd stores on PersistentVolume %s (StorageClass %s), folder %s on node %s",
			deltaVolume.Name, deltaVolume.Spec.StorageClassName, deltaVolume.Spec.HostPath.Path, dc2.Node.Name)
	})

	t.Run("etcd and the API server killed: restarted, serving, nothing lost", func(t *testing.T) {
		checkKilledProcesses(ctx, t, mgmt[dc2.Name], fed["delta"], ns, "delta")
	})

	t.Run("etcd pod deleted: a new pod on the same volume, nothing lost", func(t *testing.T) {
		checkDeletedEtcdPod(ctx, t, mgmt[dc2.Name], fed["delta"], ns, "delta")
	})

	t.Run("another tenant's pod reaches neither etcd nor the API server", func(t *testing.T) {
		checkNetworkPolicies(ctx, t, clientset(t, dc2.Kubeconfig()), ns, "delta", 5443)
	})

	t.Run("pods carry the priority class", func(t *testing.T) {
		pods := &corev1.PodList{}
		if err := mgmt[dc1.Name].List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/instance": "alpha"}); err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) < 2 {
			t.Fatalf("%d pods of alpha, want the API server and kube-controller-manager", len(pods.Items))
		}
		for _, p := range pods.Items {
			if p.Spec.PriorityClassName != "marina-control-plane-critical" || p.Spec.Priority == nil || *p.Spec.Priority != 1000000 {
				t.Errorf("pod %s: priority class %q, priority %v", p.Name, p.Spec.PriorityClassName, p.Spec.Priority)
			}
		}
	})

	t.Run("CRDs from the mirror are established", func(t *testing.T) {
		for name, c := range fed {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := c.Get(ctx, client.ObjectKey{Name: "propagationpolicies.policy.karmada.io"}, crd); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if err := c.Get(ctx, client.ObjectKey{Name: "clusters.cluster.karmada.io"}, crd); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})

	t.Run("a wrong checksum is reported and nothing stops", func(t *testing.T) {
		c := mgmt[dc1.Name]
		good := beta.Spec.CRDs.HTTP.SHA256
		patchCP(ctx, t, c, beta, func(cp *marinav1alpha1.ControlPlane) { cp.Spec.CRDs.HTTP.SHA256 = strings.Repeat("0", 64) })
		got := waitCondition(ctx, t, c, beta, marinav1alpha1.ConditionCRDsReady, metav1.ConditionFalse, marinav1alpha1.ReasonChecksumMismatch)
		if msg := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionCRDsReady).Message; !strings.Contains(msg, good) {
			t.Errorf("the message does not name the bundle's actual checksum: %s", msg)
		}
		if err := fed["beta"].List(ctx, &corev1.NamespaceList{}); err != nil {
			t.Errorf("beta's API server stopped answering: %v", err)
		}
		patchCP(ctx, t, c, beta, func(cp *marinav1alpha1.ControlPlane) { cp.Spec.CRDs.HTTP.SHA256 = good })
		waitReady(ctx, t, c, beta, 2*time.Minute)

		// A URL the mirror does not serve.
		goodURL := beta.Spec.CRDs.HTTP.URL
		patchCP(ctx, t, c, beta, func(cp *marinav1alpha1.ControlPlane) {
			cp.Spec.CRDs.HTTP.URL = localenv.BundleURL("no-such-bundle.tar.gz")
		})
		got = waitCondition(ctx, t, c, beta, marinav1alpha1.ConditionCRDsReady, metav1.ConditionFalse, marinav1alpha1.ReasonDownloadFailed)
		if msg := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionCRDsReady).Message; !strings.Contains(msg, "404") {
			t.Errorf("the message does not say what the mirror answered: %s", msg)
		}
		patchCP(ctx, t, c, beta, func(cp *marinav1alpha1.ControlPlane) { cp.Spec.CRDs.HTTP.URL = goodURL })
		waitReady(ctx, t, c, beta, 2*time.Minute)

		// A host the platform team does not allow: the environment installs
		// Marina allowing only its own mirror and Vault. Refused before any
		// request; the running control plane goes on serving.
		patchCP(ctx, t, c, beta, func(cp *marinav1alpha1.ControlPlane) { cp.Spec.CRDs.HTTP.URL = "http://198.51.100.7/crds.tar.gz" })
		got = waitCondition(ctx, t, c, beta, marinav1alpha1.ConditionReady, metav1.ConditionFalse, marinav1alpha1.ReasonURLNotAllowed)
		if msg := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionReady).Message; !strings.Contains(msg, "198.51.100.7") {
			t.Errorf("the message does not name the refused host: %s", msg)
		}
		if err := fed["beta"].List(ctx, &corev1.NamespaceList{}); err != nil {
			t.Errorf("beta's API server stopped answering: %v", err)
		}
		patchCP(ctx, t, c, beta, func(cp *marinav1alpha1.ControlPlane) { cp.Spec.CRDs.HTTP.URL = goodURL })
		waitReady(ctx, t, c, beta, 2*time.Minute)
	})

	t.Run("an image that cannot start is RolloutStuck with the pod's reason, and the running pods are kept", func(t *testing.T) {
		c := mgmt[dc1.Name]
		good := beta.Spec.Components.KubeControllerManager.Image
		running := &corev1.PodList{}
		kcm := client.MatchingLabels{"app.kubernetes.io/instance": beta.Name, "app.kubernetes.io/component": "kube-controller-manager"}
		if err := c.List(ctx, running, client.InNamespace(ns), kcm); err != nil || len(running.Items) != 1 {
			t.Fatalf("beta's kube-controller-manager pods: %v (%d)", err, len(running.Items))
		}
		patchCP(ctx, t, c, beta, func(cp *marinav1alpha1.ControlPlane) {
			cp.Spec.Components.KubeControllerManager.Image = good + "-no-such-image"
		})
		got := waitCondition(ctx, t, c, beta, marinav1alpha1.ConditionComponentsReady, metav1.ConditionFalse, marinav1alpha1.ReasonRolloutStuck)
		msg := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionComponentsReady).Message
		if !strings.Contains(msg, "beta-kube-controller-manager") || !strings.Contains(msg, "ErrImageNeverPull") {
			t.Errorf("the message does not name the workload and why its pod cannot start: %s", msg)
		}
		events := &eventsv1.EventList{}
		waitFor(ctx, t, "a Warning Event RolloutStuck", func() bool {
			if err := c.List(ctx, events, client.InNamespace(ns)); err != nil {
				return false
			}
			return slices.ContainsFunc(events.Items, func(e eventsv1.Event) bool {
				return e.Regarding.Name == beta.Name && e.Type == corev1.EventTypeWarning && e.Reason == marinav1alpha1.ReasonRolloutStuck
			})
		})
		// Nothing running is torn down: the old pod serves on, and so does
		// the API server.
		pod := &corev1.Pod{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(&running.Items[0]), pod); err != nil || !podReady(pod) {
			t.Errorf("the running kube-controller-manager pod was not kept: %v", err)
		}
		if err := fed["beta"].List(ctx, &corev1.NamespaceList{}); err != nil {
			t.Errorf("beta's API server stopped answering: %v", err)
		}
		patchCP(ctx, t, c, beta, func(cp *marinav1alpha1.ControlPlane) { cp.Spec.Components.KubeControllerManager.Image = good })
		waitReady(ctx, t, c, beta, 2*time.Minute)
	})

	t.Run("upgrades v1.16 → v1.17 → v1.18 roll every component without downtime, CRDs included", func(t *testing.T) {
		c := mgmt[dc1.Name]
		for _, r := range engine.Releases()[1:] {
			crds, err := env.KarmadaCRDs(r.Checked)
			if err != nil {
				t.Fatal(err)
			}
			failures := watchRequests(ctx, fed["alpha"])
			patchCP(ctx, t, c, alpha, func(cp *marinav1alpha1.ControlPlane) {
				cp.Spec.Version = r.Checked
				cp.Spec.CRDs.HTTP = crds
			})
			got := waitReady(ctx, t, c, alpha, 3*time.Minute)
			if errs := failures(); len(errs) > 0 {
				t.Errorf("%d requests to alpha failed during the upgrade to %s, such as: %s", len(errs), r.Checked, errs[0])
			}
			if got.Status.Version != r.Checked {
				t.Errorf("status.version = %q after the upgrade to %s", got.Status.Version, r.Checked)
			}
			if msg := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionCRDsReady).Message; !strings.Contains(msg, crds.SHA256) {
				t.Errorf("CRDsReady does not name %s's bundle: %s", r.Checked, msg)
			}
			pods := &corev1.PodList{}
			if err := c.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/instance": "alpha"}); err != nil {
				t.Fatal(err)
			}
			for _, p := range pods.Items {
				if v := p.Labels["app.kubernetes.io/version"]; v != r.Checked && p.DeletionTimestamp == nil {
					t.Errorf("pod %s still runs version %s after the upgrade to %s", p.Name, v, r.Checked)
				}
			}
			t.Logf("alpha upgraded to %s", r.Checked)
		}
	})

	t.Run("a renewed certificate rolls the API server without downtime", func(t *testing.T) {
		c := mgmt[dc1.Name]
		before := servedSerial(ctx, t, c, dc1, alpha)
		failures := watchRequests(ctx, fed["alpha"])
		renewNow(ctx, t, c, ns, "alpha-apiserver")
		waitFor(ctx, t, "the API server to serve the renewed certificate", func() bool {
			return servedSerial(ctx, t, c, dc1, alpha) != before
		})
		waitReady(ctx, t, c, alpha, 2*time.Minute)
		if errs := failures(); len(errs) > 0 {
			t.Errorf("%d requests to alpha failed during the renewal, such as: %s", len(errs), errs[0])
		}
	})

	t.Run("delete leaves nothing behind but the user's Secrets", func(t *testing.T) {
		cli, err := env.ExternalEtcd().Client()
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		for _, x := range all {
			if err := mgmt[x.dc.Name].Delete(ctx, x.cp); err != nil {
				t.Fatal(err)
			}
		}
		for _, x := range all {
			c := mgmt[x.dc.Name]
			waitFor(ctx, t, "ControlPlane "+x.cp.Name+" to be deleted", func() bool {
				return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(x.cp), &marinav1alpha1.ControlPlane{}))
			})
			checkNothingLeft(ctx, t, c, ns, x.cp.Name)
			if x.cp.Spec.Etcd.External == nil {
				// Local etcd's claim went with its StatefulSet (checked
				// above); its volume and folder go with the claim.
				if deltaVolume == nil {
					continue
				}
				waitFor(ctx, t, "PersistentVolume "+deltaVolume.Name+" and its folder to be removed", func() bool {
					_, err := os.Stat(deltaVolume.Spec.HostPath.Path)
					return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(deltaVolume), &corev1.PersistentVolume{})) && os.IsNotExist(err)
				})
				t.Logf("%s: PersistentVolume %s and folder %s removed", x.cp.Name, deltaVolume.Name, deltaVolume.Spec.HostPath.Path)
				continue
			}
			resp, err := cli.Get(ctx, etcdPrefix(x.cp)+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				t.Fatal(err)
			}
			retained := x.cp.Spec.DeletionPolicy != marinav1alpha1.DeletionPolicyDelete
			if retained && resp.Count == 0 || !retained && resp.Count != 0 {
				t.Errorf("%s (deletionPolicy %s): %d keys under %s", x.cp.Name, x.cp.Spec.DeletionPolicy, resp.Count, etcdPrefix(x.cp))
			}
		}
		for _, name := range []string{"custom-ca"} {
			if err := mgmt[dc1.Name].Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{}); err != nil {
				t.Errorf("the user's Secret %s: %v", name, err)
			}
		}
		// beta kept its keys (Retain); remove them as its owner would.
		if _, err := cli.Delete(ctx, etcdPrefix(beta)+"/", clientv3.WithPrefix()); err != nil {
			t.Error(err)
		}
	})
}

// watchRequests sends a request to c every 250 ms until the returned
// function is called, which returns the errors.
func watchRequests(ctx context.Context, c client.Client) func() []string {
	stop := make(chan struct{})
	done := make(chan []string)
	go func() {
		var errs []string
		for {
			select {
			case <-stop:
				done <- errs
				return
			case <-time.After(250 * time.Millisecond):
			}
			if err := c.List(ctx, &corev1.ConfigMapList{}, client.InNamespace("default")); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}()
	return func() []string { close(stop); return <-done }
}

// servedSerial is the serial number of the certificate the API server
// serves through its node port.
func servedSerial(ctx context.Context, t *testing.T, mgmt client.Client, dc localenv.DataCenter, cp *marinav1alpha1.ControlPlane) string {
	t.Helper()
	svc := &corev1.Service{}
	if err := mgmt.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: cp.Name + "-apiserver"}, svc); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(dc.NodeHost.IP.String(), fmt.Sprint(svc.Spec.Ports[0].NodePort))
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only reads the serial
	if err != nil {
		return ""
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func mgmtClient(t *testing.T, kubeconfigPath string) client.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: mgmtScheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// renewNow does what `cmctl renew` does: asks cert-manager to issue the
// Certificate again now.
func renewNow(ctx context.Context, t *testing.T, c client.Client, ns, name string) {
	t.Helper()
	cert := &unstructured.Unstructured{}
	cert.SetAPIVersion("cert-manager.io/v1")
	cert.SetKind("Certificate")
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cert); err != nil {
		t.Fatal(err)
	}
	conds, _, _ := unstructured.NestedSlice(cert.Object, "status", "conditions")
	conds = append(conds, map[string]any{
		"type": "Issuing", "status": "True", "reason": "ManuallyTriggered",
		"message": "renewal asked for by the e2e test", "lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
	})
	if err := unstructured.SetNestedSlice(cert.Object, conds, "status", "conditions"); err != nil {
		t.Fatal(err)
	}
	if err := c.Status().Update(ctx, cert); err != nil {
		t.Fatal(err)
	}
}

// etcdPrefix is where a created ControlPlane on the external etcd keeps its
// keys: the prefix its DataStore assigned (the data center's, named for its
// UID), or the one of its own spec.
func etcdPrefix(cp *marinav1alpha1.ControlPlane) string {
	ext := cp.Spec.Etcd.External
	if ext.DataStore == "" {
		return ext.KeyPrefix
	}
	if cp.UID == "" {
		panic("etcdPrefix of a ControlPlane not created yet: " + cp.Name)
	}
	return "/marina/" + cp.Spec.DataCenter + "/" + string(cp.UID)
}

func mustCreate(ctx context.Context, t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(ctx, obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

func patchCP(ctx context.Context, t *testing.T, c client.Client, cp *marinav1alpha1.ControlPlane, mutate func(*marinav1alpha1.ControlPlane)) {
	t.Helper()
	if err := c.Get(ctx, client.ObjectKeyFromObject(cp), cp); err != nil {
		t.Fatal(err)
	}
	before := cp.DeepCopy()
	mutate(cp)
	if err := c.Patch(ctx, cp, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
}

// waitReady waits until the ControlPlane is Ready for its current spec.
func waitReady(ctx context.Context, t *testing.T, c client.Client, cp *marinav1alpha1.ControlPlane, timeout time.Duration) *marinav1alpha1.ControlPlane {
	t.Helper()
	got := &marinav1alpha1.ControlPlane{}
	deadline := time.Now().Add(timeout)
	for {
		if err := c.Get(ctx, client.ObjectKeyFromObject(cp), got); err == nil {
			ready := meta.FindStatusCondition(got.Status.Conditions, marinav1alpha1.ConditionReady)
			if ready != nil && ready.Status == metav1.ConditionTrue && ready.ObservedGeneration == got.Generation && got.Status.Version == got.Spec.Version {
				return got
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("ControlPlane %s is not Ready after %s:\n%s", cp.Name, timeout, describe(got))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func waitCondition(ctx context.Context, t *testing.T, c client.Client, cp *marinav1alpha1.ControlPlane, typ string, status metav1.ConditionStatus, reason string) *marinav1alpha1.ControlPlane {
	t.Helper()
	got := &marinav1alpha1.ControlPlane{}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err := c.Get(ctx, client.ObjectKeyFromObject(cp), got); err == nil {
			if cond := meta.FindStatusCondition(got.Status.Conditions, typ); cond != nil && cond.Status == status && cond.Reason == reason {
				return got
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("ControlPlane %s: %s never became %s/%s:\n%s", cp.Name, typ, status, reason, describe(got))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func describe(cp *marinav1alpha1.ControlPlane) string {
	var b strings.Builder
	for _, c := range cp.Status.Conditions {
		fmt.Fprintf(&b, "  %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	return b.String()
}

// federationClient reads the admin kubeconfig the operator published and
// reaches the API server from the host. The Service's name resolves only
// inside the cluster, so it dials the node port when there is one, else a
// pod of the API server, while verifying the certificate for the Service's
// name against root alone.
func federationClient(ctx context.Context, t *testing.T, mgmt client.Client, dc localenv.DataCenter, cp *marinav1alpha1.ControlPlane, root *x509.Certificate) client.Client {
	t.Helper()
	return federationClientAs(ctx, t, mgmt, dc, cp, root, "adminKubeconfigSecretRef", func(s *marinav1alpha1.ControlPlaneStatus) *marinav1alpha1.SecretKeyReference {
		return s.AdminKubeconfigSecretRef
	})
}

// federationClientAs is federationClient through the kubeconfig that
// another status field (named field) references: an operator's own.
func federationClientAs(ctx context.Context, t *testing.T, mgmt client.Client, dc localenv.DataCenter, cp *marinav1alpha1.ControlPlane, root *x509.Certificate,
	field string, secretRef func(*marinav1alpha1.ControlPlaneStatus) *marinav1alpha1.SecretKeyReference) client.Client {
	t.Helper()
	got := &marinav1alpha1.ControlPlane{}
	if err := mgmt.Get(ctx, client.ObjectKeyFromObject(cp), got); err != nil {
		t.Fatal(err)
	}
	ref := secretRef(&got.Status)
	if ref == nil {
		t.Fatalf("%s: no status.%s", cp.Name, field)
	}
	sec := &corev1.Secret{}
	if err := mgmt.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: ref.Name}, sec); err != nil {
		t.Fatal(err)
	}
	cfg, err := kubeconfig.RESTConfig(sec.Data[ref.Key])
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != got.Status.Endpoint {
		t.Errorf("%s: the kubeconfig's server %s (status.%s) is not status.endpoint %s", cp.Name, cfg.Host, field, got.Status.Endpoint)
	}
	serverName, port, _ := net.SplitHostPort(strings.TrimPrefix(cfg.Host, "https://"))
	svc := &corev1.Service{}
	if err := mgmt.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: cp.Name + "-apiserver"}, svc); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Type == corev1.ServiceTypeNodePort {
		cfg.Host = "https://" + net.JoinHostPort(dc.NodeHost.IP.String(), fmt.Sprint(svc.Spec.Ports[0].NodePort))
	} else {
		pods := &corev1.PodList{}
		if err := mgmt.List(ctx, pods, client.InNamespace(cp.Namespace), client.MatchingLabels{
			"app.kubernetes.io/instance": cp.Name, "app.kubernetes.io/component": "apiserver",
		}); err != nil || len(pods.Items) == 0 {
			t.Fatalf("%s: no API server pod (%v)", cp.Name, err)
		}
		cfg.Host = "https://" + net.JoinHostPort(pods.Items[0].Status.PodIP, port)
	}
	cfg.TLSClientConfig.ServerName = serverName

	// The chain must verify against root, not against the ca.crt the
	// issuer put into the Secret.
	roots := x509.NewCertPool()
	roots.AddCert(root)
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", strings.TrimPrefix(cfg.Host, "https://"), &tls.Config{
		ServerName: serverName, RootCAs: roots, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		t.Fatalf("%s: the serving certificate does not verify for %s against the expected CA: %v", cp.Name, serverName, err)
	}
	_ = conn.Close()

	c, err := client.New(rest.CopyConfig(cfg), client.Options{Scheme: mgmtScheme})
	if err != nil {
		t.Fatal(err)
	}
	nss := &corev1.NamespaceList{}
	if err := c.List(ctx, nss); err != nil {
		t.Fatalf("%s does not answer through the kubeconfig of status.%s: %v", cp.Name, field, err)
	}
	if !slices.ContainsFunc(nss.Items, func(n corev1.Namespace) bool { return n.Name == "kube-system" }) {
		t.Errorf("%s: no kube-system namespace: %v", cp.Name, nss.Items)
	}
	return c
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
