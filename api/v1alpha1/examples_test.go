package v1alpha1_test

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	v1 "github.com/marina-platform/marina/api/v1alpha1"
)

// Realistic objects a platform team would write. Each test takes a fresh copy
// and changes one thing.

func fullControlPlane(name string) *v1.ControlPlane {
	return &v1.ControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a", Labels: map[string]string{v1.LabelDataCenter: "fra1"}},
		Spec: v1.ControlPlaneSpec{
			Version:          "v1.16.0",
			DataCenter:       "fra1",
			ImageRegistry:    "registry.fra1.example.com:5000/mirror/karmada",
			ImagePullPolicy:  corev1.PullIfNotPresent,
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "mirror-credentials"}},
			Etcd: v1.EtcdSpec{External: &v1.ExternalEtcd{
				Endpoints:    []string{"https://etcd-0.fra1.example.com:2379", "https://etcd-1.fra1.example.com:2379", "https://10.0.0.12:2379"},
				TLSSecretRef: &v1.SecretReference{Name: "etcd-client-tls"},
				KeyPrefix:    "/marina/fra1/team-a",
			}},
			Certificates: v1.CertificatesSpec{
				CASecretRef: &v1.SecretReference{Name: "team-a-ca"},
				Duration:    &metav1.Duration{Duration: 2160 * time.Hour},
				RenewBefore: &metav1.Duration{Duration: 360 * time.Hour},
				ExtraSANs:   []string{"federation.fra1.example.com", "*.federation.example.com", "192.0.2.10", "2001:db8::10"},
			},
			Encryption: &v1.EncryptionSpec{
				KMS: v1.KMSSpec{Vault: v1.VaultKMS{
					Address:      "https://vault.example.com:8200",
					TransitMount: "transit/fra1",
					KeyName:      "team-a-federation",
					Auth: v1.VaultAuth{AppRole: &v1.VaultAppRoleAuth{
						RoleID:            "8b4b7f4e-5c9d-4b87-9a53-2b7a41e4d2a1",
						SecretIDSecretRef: v1.SecretKeyReference{Name: "vault-approle", Key: "secret-id"},
					}},
					CABundleSecretRef: &v1.SecretKeyReference{Name: "vault-ca"},
				}},
				Resources: []string{"secrets", "configmaps", "resourcebindings.work.karmada.io"},
			},
			PriorityClassName: "marina-control-plane",
			Components: v1.ComponentsSpec{
				APIServer: v1.APIServerComponent{
					ComponentSpec: v1.ComponentSpec{
						Replicas:     ptr.To[int32](3),
						AntiAffinity: v1.AntiAffinityRequired,
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi")},
						},
						ExtraArgs: map[string]string{"v": "2", "max-requests-inflight": "800"},
					},
					Service: v1.APIServerService{
						Type:        corev1.ServiceTypeLoadBalancer,
						NodePort:    ptr.To[int32](32443),
						Annotations: map[string]string{"service.beta.kubernetes.io/openstack-internal-load-balancer": "true"},
					},
				},
				KubeControllerManager: v1.ComponentSpec{Replicas: ptr.To[int32](2)},
				Scheduler:             v1.SchedulerComponent{OptionalComponentSpec: v1.OptionalComponentSpec{Enabled: ptr.To(true), ComponentSpec: v1.ComponentSpec{Replicas: ptr.To[int32](2), PriorityClassName: "marina-control-plane"}}},
				Webhook:               v1.OptionalComponentSpec{ComponentSpec: v1.ComponentSpec{Image: "registry.fra1.example.com:5000/karmada/karmada-webhook:v1.16.0"}},
				Descheduler:           v1.OptionalComponentSpec{Enabled: ptr.To(true)},
				ControllerManager: v1.OptionalComponentSpec{ComponentSpec: v1.ComponentSpec{
					NodeSelector: map[string]string{"node-role.kubernetes.io/control-plane": ""},
					Tolerations:  []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
				}},
			},
			CRDs: v1.CRDsSpec{
				HTTP: &v1.HTTPSource{
					URL:      "https://mirror.fra1.example.com/karmada/v1.16.0/crds.tar.gz",
					SHA256:   "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
					ProxyURL: "http://proxy.fra1.example.com:3128",
				},
				Policy: v1.CRDPolicyAlways,
			},
			DeletionPolicy: v1.DeletionPolicyDelete,
		},
	}
}

// minimalControlPlane is the smallest valid ControlPlane: everything else
// comes from defaults.
func minimalControlPlane(name string) *v1.ControlPlane {
	return &v1.ControlPlane{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a"},
		Spec: v1.ControlPlaneSpec{
			Version:      "v1.16.0",
			DataCenter:   "ams2",
			Etcd:         v1.EtcdSpec{Local: &v1.LocalEtcd{}},
			Certificates: v1.CertificatesSpec{IssuerRef: &v1.IssuerReference{Name: "corporate-pki", Kind: "ClusterIssuer"}},
		},
	}
}

func fullMemberCluster(name string) *v1.MemberCluster {
	return &v1.MemberCluster{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a"},
		Spec: v1.MemberClusterSpec{
			ClusterRef:    &v1.ClusterReference{Name: "fra1-workload-1"},
			ControlPlanes: []v1.ControlPlaneReference{{Name: "fra1-primary"}, {Name: "ams2-standby"}},
			ClusterProperties: v1.ClusterProperties{
				Provider:      "openstack",
				Region:        "eu-central",
				Zones:         []string{"fra1-a", "fra1-b"},
				ClusterLabels: map[string]string{"environment": "production", "tier": "gold"},
				Taints:        []corev1.Taint{{Key: "dedicated", Value: "payments", Effect: corev1.TaintEffectNoSchedule}},
				SyncMode:      v1.SyncModePush,
			},
		},
	}
}

func kubeconfigMemberCluster(name string) *v1.MemberCluster {
	return &v1.MemberCluster{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a"},
		Spec: v1.MemberClusterSpec{
			KubeconfigSecretRef: &v1.SecretKeyReference{Name: "edge-7-kubeconfig"},
			ControlPlanes:       []v1.ControlPlaneReference{{Name: "fra1-primary"}},
		},
	}
}

func fullRegistrationPolicy(name string) *v1.RegistrationPolicy {
	return &v1.RegistrationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a"},
		Spec: v1.RegistrationPolicySpec{
			Sources: v1.RegistrationSources{
				ClusterAPI: &v1.ClusterAPISource{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"marina.dev/federate": "true"}}},
				KubeconfigSecrets: &v1.KubeconfigSecretSource{
					Selector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "marina.dev/kubeconfig", Operator: metav1.LabelSelectorOpExists}}},
					Key:      "value",
				},
			},
			ControlPlaneSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: v1.LabelDataCenter, Operator: metav1.LabelSelectorOpIn, Values: []string{"fra1", "ams2"}}}},
			Approval:             v1.ApprovalManual,
			Template:             v1.ClusterProperties{Provider: "capi", Region: "eu-central", ClusterLabels: map[string]string{"onboarded-by": "marina"}},
		},
	}
}

func fullPolicySet(name string) *v1.PolicySet {
	return &v1.PolicySet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a"},
		Spec: v1.PolicySetSpec{
			Sources: []v1.PolicySource{
				{Bundle: "baseline"},
				{ConfigMapRef: &v1.ConfigMapReference{Name: "team-a-policies", Key: "propagation.yaml"}},
				{HTTP: &v1.HTTPSource{URL: "https://policies.example.com/v3/quotas.yaml", SHA256: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}},
				{Inline: []runtime.RawExtension{
					{Raw: []byte(`{"apiVersion":"policy.karmada.io/v1alpha1","kind":"ClusterPropagationPolicy","metadata":{"name":"crds-everywhere"},"spec":{"resourceSelectors":[{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition"}],"placement":{"clusterAffinity":{"labelSelector":{"matchLabels":{"environment":"production"}}}}}}`)},
					{Raw: []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"payments","labels":{"team":"a"}}}`)},
				}},
			},
			ControlPlaneSelector: metav1.LabelSelector{MatchLabels: map[string]string{"marina.dev/tier": "production"}},
			Prune:                ptr.To(false),
			DriftMode:            v1.DriftModeReport,
		},
	}
}

func fullPeer(name string) *v1.Peer {
	return &v1.Peer{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PeerSpec{
			DataCenter: "ams2",
			KubeconfigSecretRef: v1.NamespacedSecretKeyReference{
				Namespace:          "marina-system",
				SecretKeyReference: v1.SecretKeyReference{Name: "peer-ams2", Key: "value"},
			},
		},
	}
}
