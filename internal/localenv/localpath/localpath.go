// Package localpath runs local-path-provisioner, the dynamic storage
// provisioner kind ships, behind a cluster's default StorageClass in the local
// environment, so that PersistentVolumeClaims (a ControlPlane's local etcd on
// the README's own example) bind there as they do on a real cluster.
//
// A claim of the class waits for its first pod (WaitForFirstConsumer); the
// provisioner then runs a helper pod on that pod's node, which makes the
// volume's folder under the node's storage folder, and creates a hostPath
// PersistentVolume pinned to the node. Deleting the claim deletes the volume
// (reclaim policy Delete), and another helper pod removes the folder.
//
// Values in, objects out: Objects is pure and Apply only talks to the API
// server; the local environment waits for the Deployment as for its others.
package localpath

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/marina-platform/marina/internal/apply"
)

const (
	// Name names the Deployment, its ServiceAccount and ConfigMap, and the
	// RBAC objects (prefixed marina:).
	Name = "local-path-provisioner"
	// Namespace holds the provisioner and its helper pods, as upstream's
	// manifest has it.
	Namespace = "local-path-storage"
	// StorageClassName is the default class, named as kind names its own.
	StorageClassName = "standard"
	// Provisioner is the provisioner's name on the class and its volumes.
	Provisioner = "rancher.io/local-path"
	// FieldManager owns the fields Apply sets.
	FieldManager = "marina-dev"
	// HelperPath is where the helper image holds volume-helper.
	HelperPath = "/volume-helper"

	clusterRoleName = "marina:" + Name
	configMapName   = Name + "-config"
	configDir       = "/etc/config"
	nonRootUID      = 65532
)

// Values configure the provisioner.
type Values struct {
	// Image runs local-path-provisioner; HelperImage runs volume-helper at
	// HelperPath. Both are imported into every node, never pulled.
	Image, HelperImage string
	// NodePaths maps each node to the folder its volumes go under. A node
	// not listed gets no volumes: its claims say so in their events.
	NodePaths map[string]string
}

func (v Values) validate() error {
	var errs []error
	if v.Image == "" || v.HelperImage == "" {
		errs = append(errs, errors.New("localpath: Image and HelperImage are required"))
	}
	if len(v.NodePaths) == 0 {
		errs = append(errs, errors.New("localpath: NodePaths needs at least one node"))
	}
	for n, p := range v.NodePaths {
		if !filepath.IsAbs(p) || filepath.Clean(p) == "/" {
			errs = append(errs, fmt.Errorf("localpath: node %s: path %q must be an absolute folder other than /", n, p))
		}
	}
	return errors.Join(errs...)
}

func labels() map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       Name,
		"app.kubernetes.io/managed-by": FieldManager,
	}
}

func objectMeta(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels()}
}

// Objects are everything the provisioner consists of, in the order to create
// them.
func Objects(v Values) ([]client.Object, error) {
	if err := v.validate(); err != nil {
		return nil, err
	}
	cm, err := configMap(v)
	if err != nil {
		return nil, err
	}
	return []client.Object{
		&corev1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: objectMeta(Namespace, "")},
		&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: objectMeta(Name, Namespace)},
		clusterRole(), clusterRoleBinding(), role(), roleBinding(),
		cm, deployment(v), storageClass(),
	}, nil
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// clusterRole is what the provisioner needs cluster-wide: upstream's
// ClusterRole without its cluster-wide pods and ConfigMaps, which it only
// uses in its own namespace (role).
func clusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   typeMeta(rbacv1.SchemeGroupVersion.String(), "ClusterRole"),
		ObjectMeta: objectMeta(clusterRoleName, ""),
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"nodes", "persistentvolumeclaims"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"persistentvolumes"}, Verbs: []string{"get", "list", "watch", "create", "patch", "update", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			{APIGroups: []string{"storage.k8s.io"}, Resources: []string{"storageclasses"}, Verbs: []string{"get", "list", "watch"}},
		},
	}
}

func clusterRoleBinding() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   typeMeta(rbacv1.SchemeGroupVersion.String(), "ClusterRoleBinding"),
		ObjectMeta: objectMeta(clusterRoleName, ""),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRoleName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: Namespace, Name: Name}},
	}
}

// role covers the helper pods (created, watched, their logs read, deleted)
// and the ConfigMap the provisioner reads its helper pod template from.
func role() *rbacv1.Role {
	return &rbacv1.Role{
		TypeMeta:   typeMeta(rbacv1.SchemeGroupVersion.String(), "Role"),
		ObjectMeta: objectMeta(clusterRoleName, Namespace),
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "create", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}},
		},
	}
}

func roleBinding() *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   typeMeta(rbacv1.SchemeGroupVersion.String(), "RoleBinding"),
		ObjectMeta: objectMeta(clusterRoleName, Namespace),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: clusterRoleName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: Namespace, Name: Name}},
	}
}

// config is the provisioner's config.json (upstream's ConfigData, the
// fields used here).
type config struct {
	NodePathMap     []nodePaths `json:"nodePathMap"`
	SetupCommand    string      `json:"setupCommand"`
	TeardownCommand string      `json:"teardownCommand"`
}

type nodePaths struct {
	Node  string   `json:"node"`
	Paths []string `json:"paths"`
}

// Config is the provisioner's config.json for v: each node's folder, and
// volume-helper as both the setup and the teardown command.
func Config(v Values) (string, error) {
	c := config{SetupCommand: HelperPath, TeardownCommand: HelperPath}
	nodes := make([]string, 0, len(v.NodePaths))
	for n := range v.NodePaths {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	for _, n := range nodes {
		c.NodePathMap = append(c.NodePathMap, nodePaths{Node: n, Paths: []string{filepath.Clean(v.NodePaths[n])}})
	}
	b, err := json.MarshalIndent(c, "", "  ")
	return string(b), err
}

// helperPod is the template of the helper pods: the provisioner adds the
// command, the volume's folder, the node and tolerations. It runs as root
// because the node's folder is root's.
func helperPod(v Values) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   typeMeta("v1", "Pod"),
		ObjectMeta: metav1.ObjectMeta{Name: "helper-pod"},
		Spec: corev1.PodSpec{
			PriorityClassName:            "system-node-critical",
			AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{
				Name:            "helper-pod",
				Image:           v.HelperImage,
				ImagePullPolicy: corev1.PullNever,
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("8Mi"),
				}},
			}},
		},
	}
}

func configMap(v Values) (*corev1.ConfigMap, error) {
	cfg, err := Config(v)
	if err != nil {
		return nil, err
	}
	pod, err := yaml.Marshal(helperPod(v))
	if err != nil {
		return nil, err
	}
	return &corev1.ConfigMap{
		TypeMeta:   typeMeta("v1", "ConfigMap"),
		ObjectMeta: objectMeta(configMapName, Namespace),
		Data:       map[string]string{"config.json": cfg, "helperPod.yaml": string(pod)},
	}, nil
}

func deployment(v Values) *appsv1.Deployment {
	sel := map[string]string{"app.kubernetes.io/name": Name}
	return &appsv1.Deployment{
		TypeMeta:   typeMeta(appsv1.SchemeGroupVersion.String(), "Deployment"),
		ObjectMeta: objectMeta(Name, Namespace),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			// One provisioner at a time: it runs without leader election.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels()},
				Spec: corev1.PodSpec{
					ServiceAccountName: Name,
					PriorityClassName:  "system-cluster-critical",
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](nonRootUID), RunAsGroup: ptr.To[int64](nonRootUID),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:            Name,
						Image:           v.Image,
						ImagePullPolicy: corev1.PullNever,
						Args: []string{"start",
							"--config", configDir + "/config.json",
							"--provisioner-name", Provisioner,
							"--namespace", Namespace,
							"--service-account-name", Name,
							"--configmap-name", configMapName,
							"--helper-image", v.HelperImage,
						},
						Env:          []corev1.EnvVar{{Name: "CONFIG_MOUNT_PATH", Value: configDir}},
						VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: configDir, ReadOnly: true}},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi"),
						}},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
					Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{
						ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: configMapName}},
					}}},
				},
			},
		},
	}
}

// storageClass is the cluster's default class. Volumes bind once a pod is
// scheduled, since a volume is a folder on one node.
func storageClass() *storagev1.StorageClass {
	meta := objectMeta(StorageClassName, "")
	meta.Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}
	return &storagev1.StorageClass{
		TypeMeta:          typeMeta(storagev1.SchemeGroupVersion.String(), "StorageClass"),
		ObjectMeta:        meta,
		Provisioner:       Provisioner,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}
}

// Apply creates or updates every object with server-side apply.
func Apply(ctx context.Context, c client.Client, v Values) error {
	objs, err := Objects(v)
	if err != nil {
		return err
	}
	return apply.Objects(ctx, c, FieldManager, objs)
}
