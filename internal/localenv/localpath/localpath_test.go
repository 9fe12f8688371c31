package localpath

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/marina-platform/marina/internal/testenv"
)

var testValues = Values{
	Image:       "marina.local/local-path-provisioner:v0.0.30",
	HelperImage: "marina.local/volume-helper:v1",
	NodePaths:   map[string]string{"dc1-node-1": "/root/.marina/local/dc1/node/local-path", "a-node": "/data/"},
}

func TestObjects(t *testing.T) {
	objs, err := Objects(testValues)
	if err != nil {
		t.Fatal(err)
	}
	var (
		sc  *storagev1.StorageClass
		cm  *corev1.ConfigMap
		dep *appsv1.Deployment
		cr  *rbacv1.ClusterRole
		r   *rbacv1.Role
	)
	for _, o := range objs {
		if o.GetObjectKind().GroupVersionKind().Kind == "" {
			t.Errorf("%T %s has no kind: server-side apply needs it", o, o.GetName())
		}
		switch o := o.(type) {
		case *storagev1.StorageClass:
			sc = o
		case *corev1.ConfigMap:
			cm = o
		case *appsv1.Deployment:
			dep = o
		case *rbacv1.ClusterRole:
			cr = o
		case *rbacv1.Role:
			r = o
		}
	}
	if sc == nil || cm == nil || dep == nil || cr == nil || r == nil {
		t.Fatalf("missing objects: %v", objs)
	}

	if sc.Annotations["storageclass.kubernetes.io/is-default-class"] != "true" || sc.Provisioner != Provisioner ||
		*sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer || *sc.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Errorf("StorageClass %+v: want the default class of %s, bound on first consumer, volumes deleted with their claims", sc, Provisioner)
	}

	var cfg config
	if err := json.Unmarshal([]byte(cm.Data["config.json"]), &cfg); err != nil {
		t.Fatal(err)
	}
	want := []nodePaths{{"a-node", []string{"/data"}}, {"dc1-node-1", []string{"/root/.marina/local/dc1/node/local-path"}}}
	if len(cfg.NodePathMap) != 2 || cfg.NodePathMap[0].Node != want[0].Node || cfg.NodePathMap[0].Paths[0] != want[0].Paths[0] ||
		cfg.NodePathMap[1].Paths[0] != want[1].Paths[0] {
		t.Errorf("nodePathMap %+v, want %+v (sorted, cleaned)", cfg.NodePathMap, want)
	}
	if cfg.SetupCommand != HelperPath || cfg.TeardownCommand != HelperPath {
		t.Errorf("setup %q teardown %q, want %s for both: the nodes have no shell", cfg.SetupCommand, cfg.TeardownCommand, HelperPath)
	}
	pod := &corev1.Pod{}
	if err := yaml.Unmarshal([]byte(cm.Data["helperPod.yaml"]), pod); err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.Containers) != 1 || pod.Spec.Containers[0].Image != testValues.HelperImage || pod.Spec.Containers[0].ImagePullPolicy != corev1.PullNever {
		t.Errorf("helper pod %+v: want one container of %s, never pulled", pod.Spec, testValues.HelperImage)
	}

	c := dep.Spec.Template.Spec.Containers[0]
	if c.Image != testValues.Image || c.ImagePullPolicy != corev1.PullNever || !strings.Contains(strings.Join(c.Args, " "), "--provisioner-name "+Provisioner) {
		t.Errorf("provisioner container %+v", c)
	}
	if sc := dep.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("the provisioner must run as a non-root user: %+v", sc)
	}

	// Pods and ConfigMaps only in its own namespace: a cluster-wide grant
	// would let it create pods (hostPath ones) anywhere.
	for _, rule := range cr.Rules {
		for _, res := range rule.Resources {
			if res == "pods" || res == "configmaps" || res == "secrets" {
				t.Errorf("ClusterRole grants %v on %s cluster-wide", rule.Verbs, res)
			}
		}
	}
	if r.Namespace != Namespace {
		t.Errorf("Role in %q, want %q", r.Namespace, Namespace)
	}
}

func TestObjectsRejectsBadValues(t *testing.T) {
	tests := []struct {
		name string
		v    Values
		want string
	}{
		{"no images", Values{NodePaths: testValues.NodePaths}, "Image and HelperImage are required"},
		{"no nodes", Values{Image: "i", HelperImage: "h"}, "at least one node"},
		{"relative path", Values{Image: "i", HelperImage: "h", NodePaths: map[string]string{"n": "data"}}, `node n: path "data"`},
		{"the root", Values{Image: "i", HelperImage: "h", NodePaths: map[string]string{"n": "/"}}, `node n: path "/"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Objects(tt.v)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Objects = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestApplyAgainstAPIServer applies the objects twice to a real API server:
// every object is valid, and a second apply is a no-op, not a conflict.
// Waiting for the Deployment is the local environment's waitDeployments,
// which every `make up` runs for this and for Marina's operators.
// Provisioning itself needs nodes; the e2e suite's local etcd on a
// PersistentVolumeClaim checks it.
func TestApplyAgainstAPIServer(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop test API server: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range 2 {
		if err := Apply(ctx, env.Client, testValues); err != nil {
			t.Fatalf("apply #%d: %v", i+1, err)
		}
	}
	sc := &storagev1.StorageClass{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: StorageClassName}, sc); err != nil {
		t.Fatal(err)
	}
}
