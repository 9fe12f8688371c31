package localenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

// ControlPlane is a ControlPlane that runs in this environment: on the
// data center's DataStore (the shared external etcd, where Marina gives it
// a key prefix and an etcd user of its own), with certificates from the
// environment's ClusterIssuer, the Kubernetes images built from source
// (never pulled), the engine's components off (there are no images for
// them; the operator then installs its stand-in Cluster CRD), and the
// engine's own CRD bundle from the environment's HTTP mirror.
// `make up` prints it; the e2e tests start from it.
func (e *Env) ControlPlane(dc DataCenter, namespace, name string) (*marinav1alpha1.ControlPlane, error) {
	v, err := ReadVersions(e.opts.RepoRoot)
	if err != nil {
		return nil, err
	}
	crds, err := e.KarmadaCRDs(KarmadaVersion)
	if err != nil {
		return nil, err
	}
	off := ptr.To(false)
	return &marinav1alpha1.ControlPlane{
		TypeMeta:   metav1.TypeMeta{APIVersion: marinav1alpha1.GroupVersion.String(), Kind: "ControlPlane"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: marinav1alpha1.ControlPlaneSpec{
			Version:           KarmadaVersion,
			DataCenter:        dc.Name,
			ImagePullPolicy:   corev1.PullNever,
			PriorityClassName: "marina-control-plane",
			Etcd: marinav1alpha1.EtcdSpec{External: &marinav1alpha1.ExternalEtcd{
				DataStore: DataStoreName,
			}},
			Certificates: marinav1alpha1.CertificatesSpec{
				IssuerRef: &marinav1alpha1.IssuerReference{Name: ClusterIssuerName, Kind: "ClusterIssuer"},
			},
			Components: marinav1alpha1.ComponentsSpec{
				APIServer: marinav1alpha1.APIServerComponent{ComponentSpec: marinav1alpha1.ComponentSpec{
					Image: v.kubeImage("kube-apiserver"), Resources: requests("50m", "128Mi"),
				}},
				KubeControllerManager: marinav1alpha1.ComponentSpec{
					Image: v.kubeImage("kube-controller-manager"), Resources: requests("10m", "32Mi"),
				},
				AggregatedAPIServer: marinav1alpha1.OptionalComponentSpec{Enabled: off},
				ControllerManager:   marinav1alpha1.OptionalComponentSpec{Enabled: off},
				Scheduler:           marinav1alpha1.SchedulerComponent{OptionalComponentSpec: marinav1alpha1.OptionalComponentSpec{Enabled: off}},
				Webhook:             marinav1alpha1.OptionalComponentSpec{Enabled: off},
				MetricsAdapter:      marinav1alpha1.OptionalComponentSpec{Enabled: off},
				Search:              marinav1alpha1.OptionalComponentSpec{Enabled: off},
			},
			CRDs: marinav1alpha1.CRDsSpec{HTTP: crds},
		},
	}, nil
}

// KarmadaCRDs is where a ControlPlane of the environment gets the engine's
// CRD bundle of version: the environment's mirror, with its checksum.
func (e *Env) KarmadaCRDs(version string) (*marinav1alpha1.HTTPSource, error) {
	sum, err := e.bundleSHA256(KarmadaCRDBundle(version))
	if err != nil {
		return nil, err
	}
	return &marinav1alpha1.HTTPSource{URL: BundleURL(KarmadaCRDBundle(version)), SHA256: sum}, nil
}

// requests are small, so that several control planes fit on the
// environment's one node per data center next to everything else.
func requests(cpu, memory string) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory),
	}}
}

// EtcdImage is the etcd image the environment builds, for a ControlPlane's
// spec.etcd.local.image.
func (e *Env) EtcdImage() (string, error) {
	v, err := ReadVersions(e.opts.RepoRoot)
	if err != nil {
		return "", err
	}
	return v.etcdImage(), nil
}

// bundleSHA256 reads a published bundle's checksum file.
func (e *Env) bundleSHA256(name string) (string, error) {
	data, err := os.ReadFile(filepath.Join(e.bundleDir(), filepath.FromSlash(name)+".sha256"))
	if err != nil {
		return "", fmt.Errorf("checksum of bundle %s (is the environment up?): %w", name, err)
	}
	return strings.Fields(string(data))[0], nil
}
