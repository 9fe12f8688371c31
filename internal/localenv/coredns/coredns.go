// Package coredns runs CoreDNS as the cluster DNS of a local environment's
// cluster: it serves the cluster domain (cluster.local) from the Kubernetes
// API and nothing else. There is no upstream forward, by design: traffic from
// the local environment never leaves the machine.
//
// Names outside the cluster domain get SERVFAIL: the "." server block accepts
// every query, the kubernetes plugin passes names outside its zones down the
// chain, and no plugin after it answers them. A pod's resolver therefore fails
// fast on such a name instead of waiting for a timeout.
//
// Values in, objects out: Objects is pure and Apply / WaitReady / Destroy only
// talk to the API server. Corefile is shared by the Deployment's ConfigMap and
// by tests that run the CoreDNS binary as a process.
package coredns

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/marina-platform/marina/internal/apply"
)

const (
	// Name names the ServiceAccount, ConfigMap and Deployment.
	Name = "coredns"
	// ServiceName is the Service kubelets' --cluster-dns points at, named as
	// Kubernetes has always named it.
	ServiceName = "kube-dns"
	// Namespace holds everything namespaced.
	Namespace = metav1.NamespaceSystem
	// ClusterRoleName names the ClusterRole and its binding.
	ClusterRoleName = "marina:coredns"
	// FieldManager owns the fields Apply sets.
	FieldManager = "marina-dev"
	// DefaultClusterDomain is the domain served when Values leave it empty.
	DefaultClusterDomain = "cluster.local"

	// HealthPort serves /health (liveness), ReadyPort /ready (readiness).
	HealthPort = 8080
	ReadyPort  = 8181
	// DNSPort is the port the Service and the pods serve DNS on.
	DNSPort = 53

	corefileKey = "Corefile"
	configDir   = "/etc/coredns"
	// nonRootUID is the conventional "nonroot" user of distroless images; the
	// image has no /etc/passwd, so the pod names the user by number.
	nonRootUID = 65532
)

// selector labels the pods; kube-dns' historical label, which tools expect.
var selector = map[string]string{"k8s-app": "kube-dns"}

// Values configure the cluster DNS.
type Values struct {
	// Image is the CoreDNS image, imported into every node (never pulled),
	// e.g. marina.local/coredns:v1.14.7.
	Image string
	// ClusterIP is the kube-dns Service's address, the kubelets'
	// --cluster-dns, e.g. 10.96.0.10.
	ClusterIP string
	// ClusterDomain is the kubelets' --cluster-domain; cluster.local if empty.
	ClusterDomain string
	// Replicas is the number of CoreDNS pods; 1 if zero.
	Replicas int32
}

func (v Values) withDefaults() Values {
	if v.ClusterDomain == "" {
		v.ClusterDomain = DefaultClusterDomain
	}
	if v.Replicas == 0 {
		v.Replicas = 1
	}
	return v
}

func (v Values) validate() error {
	var errs []error
	if v.Image == "" {
		errs = append(errs, errors.New("image is empty"))
	}
	if net.ParseIP(v.ClusterIP) == nil {
		errs = append(errs, fmt.Errorf("cluster IP %q is not an IP address", v.ClusterIP))
	}
	if err := validateDomain(v.ClusterDomain); err != nil {
		errs = append(errs, err)
	}
	if v.Replicas < 0 {
		errs = append(errs, fmt.Errorf("replicas %d is negative", v.Replicas))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("coredns values: %w", err)
	}
	return nil
}

// validateDomain keeps the domain a plain DNS name: it is written into the
// Corefile, where a space or brace would change the configuration.
func validateDomain(d string) error {
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return errors.New("cluster domain is empty")
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("cluster domain %q has an empty or too long label", d)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("cluster domain %q has a character %q outside letters, digits and '-'", d, r)
			}
		}
	}
	return nil
}

// CorefileOptions say where and how a CoreDNS serves. The zero value (plus a
// cluster domain) is what the Deployment runs: port 53 on every address of
// the pod, health and readiness on 8080 and 8181, the in-cluster API.
type CorefileOptions struct {
	// ClusterDomain is the zone served; cluster.local if empty.
	ClusterDomain string
	// Port serves DNS over UDP and TCP; 53 if zero.
	Port int
	// BindAddress restricts DNS to one address (the bind plugin), e.g.
	// 127.0.0.1 for a process on the host; every address if empty.
	BindAddress string
	// HealthAddress and ReadyAddress are the host:port of /health and
	// /ready; ":8080" and ":8181" if empty.
	HealthAddress string
	ReadyAddress  string
	// Kubeconfig reaches the API server from outside a cluster; the
	// in-cluster service account if empty. KubeconfigContext picks a context
	// (the current one if empty).
	Kubeconfig        string
	KubeconfigContext string
}

// Corefile renders CoreDNS's configuration. It never contains a forward: a
// CoreDNS built from hack/tools/coredns has no forward plugin and would refuse
// to load one.
func Corefile(o CorefileOptions) (string, error) {
	domain := o.ClusterDomain
	if domain == "" {
		domain = DefaultClusterDomain
	}
	if err := validateDomain(domain); err != nil {
		return "", err
	}
	port := o.Port
	if port == 0 {
		port = DNSPort
	}
	if port < 1 || port > 65535 {
		return "", fmt.Errorf("DNS port %d is out of range", port)
	}
	health := o.HealthAddress
	if health == "" {
		health = ":" + strconv.Itoa(HealthPort)
	}
	ready := o.ReadyAddress
	if ready == "" {
		ready = ":" + strconv.Itoa(ReadyPort)
	}
	for _, a := range []string{health, ready} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return "", fmt.Errorf("health or ready address %q: %w", a, err)
		}
	}
	if o.BindAddress != "" && net.ParseIP(o.BindAddress) == nil {
		return "", fmt.Errorf("bind address %q is not an IP address", o.BindAddress)
	}

	var b strings.Builder
	fmt.Fprintf(&b, ".:%d {\n", port)
	if o.BindAddress != "" {
		fmt.Fprintf(&b, "    bind %s\n", o.BindAddress)
	}
	b.WriteString("    errors\n")
	// lameduck keeps a stopping pod answering while its endpoint is removed.
	fmt.Fprintf(&b, "    health %s {\n        lameduck 5s\n    }\n", health)
	fmt.Fprintf(&b, "    ready %s\n", ready)
	fmt.Fprintf(&b, "    kubernetes %s in-addr.arpa ip6.arpa {\n", strings.TrimSuffix(domain, "."))
	if o.Kubeconfig != "" {
		// Quoted: a Corefile token ends at whitespace.
		fmt.Fprintf(&b, "        kubeconfig %q", o.Kubeconfig)
		if o.KubeconfigContext != "" {
			fmt.Fprintf(&b, " %q", o.KubeconfigContext)
		}
		b.WriteString("\n")
	}
	b.WriteString("        pods insecure\n")
	// Reverse names outside the cluster's ranges go down the chain (and
	// get SERVFAIL there) instead of a NXDOMAIN from the kubernetes plugin.
	b.WriteString("        fallthrough in-addr.arpa ip6.arpa\n")
	b.WriteString("        ttl 30\n")
	b.WriteString("    }\n")
	b.WriteString("    cache 30\n")
	b.WriteString("    loop\n")
	b.WriteString("    reload\n")
	b.WriteString("    loadbalance\n")
	b.WriteString("}\n")
	return b.String(), nil
}

func labels() map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       Name,
		"app.kubernetes.io/managed-by": FieldManager,
		"k8s-app":                      "kube-dns",
	}
}

func objectMeta(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels()}
}

// Objects are everything the cluster DNS consists of, in the order to create
// them: ServiceAccount, ClusterRole, ClusterRoleBinding, ConfigMap,
// Deployment, Service.
func Objects(v Values) ([]client.Object, error) {
	v = v.withDefaults()
	if err := v.validate(); err != nil {
		return nil, err
	}
	corefile, err := Corefile(CorefileOptions{ClusterDomain: v.ClusterDomain})
	if err != nil {
		return nil, err
	}
	return []client.Object{
		serviceAccount(),
		clusterRole(),
		clusterRoleBinding(),
		configMap(corefile),
		deployment(v, corefile),
		service(v),
	}, nil
}

func serviceAccount() *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: objectMeta(Name, Namespace),
	}
}

// clusterRole is what the kubernetes plugin watches (pods for "pods
// insecure", namespaces for existence checks of <ns>.svc names).
func clusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRole"},
		ObjectMeta: objectMeta(ClusterRoleName, ""),
		Rules: []rbacv1.PolicyRule{
			{
				APIGroups: []string{""},
				Resources: []string{"endpoints", "services", "pods", "namespaces"},
				Verbs:     []string{"list", "watch"},
			},
			{
				APIGroups: []string{discoveryv1.GroupName},
				Resources: []string{"endpointslices"},
				Verbs:     []string{"list", "watch"},
			},
		},
	}
}

func clusterRoleBinding() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRoleBinding"},
		ObjectMeta: objectMeta(ClusterRoleName, ""),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ClusterRoleName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: Name, Namespace: Namespace}},
	}
}

func configMap(corefile string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: objectMeta(Name, Namespace),
		Data:       map[string]string{corefileKey: corefile},
	}
}

func deployment(v Values, corefile string) *appsv1.Deployment {
	sum := sha256.Sum256([]byte(corefile))
	podLabels := map[string]string{}
	for k, val := range labels() {
		podLabels[k] = val
	}
	probe := func(path string, port int, initialDelay int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: path, Port: intstr.FromInt32(int32(port)), Scheme: corev1.URISchemeHTTP,
			}},
			InitialDelaySeconds: initialDelay,
			TimeoutSeconds:      5,
			PeriodSeconds:       10,
			SuccessThreshold:    1,
			FailureThreshold:    5,
		}
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: "Deployment"},
		ObjectMeta: objectMeta(Name, Namespace),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(v.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromInt32(1)),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels: podLabels,
					// A changed Corefile rolls the pods at once rather than
					// waiting for the kubelet to refresh the volume.
					Annotations: map[string]string{"marina.dev/corefile-sha256": hex.EncodeToString(sum[:])},
				},
				Spec: corev1.PodSpec{
					ServiceAccountName: Name,
					PriorityClassName:  "system-cluster-critical",
					// CoreDNS must not resolve through itself; it resolves
					// nothing upstream anyway.
					DNSPolicy:    corev1.DNSDefault,
					NodeSelector: map[string]string{corev1.LabelOSStable: "linux"},
					Tolerations: []corev1.Toleration{
						{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
						{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule},
					},
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot: ptr.To(true),
						RunAsUser:    ptr.To[int64](nonRootUID),
						RunAsGroup:   ptr.To[int64](nonRootUID),
						// A non-root process cannot keep NET_BIND_SERVICE
						// across exec without ambient or file capabilities,
						// which containerd's CRI does not set and our
						// plain image does not carry. Opening port 53 to
						// unprivileged users in the pod's own network
						// namespace is a safe sysctl and needs neither.
						Sysctls: []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: strconv.Itoa(DNSPort)}},
					},
					Containers: []corev1.Container{{
						Name:            Name,
						Image:           v.Image,
						ImagePullPolicy: corev1.PullNever,
						Args:            []string{"-conf", configDir + "/" + corefileKey},
						Ports: []corev1.ContainerPort{
							{Name: "dns", ContainerPort: DNSPort, Protocol: corev1.ProtocolUDP},
							{Name: "dns-tcp", ContainerPort: DNSPort, Protocol: corev1.ProtocolTCP},
						},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{
								corev1.ResourceCPU:    resource.MustParse("100m"),
								corev1.ResourceMemory: resource.MustParse("70Mi"),
							},
							Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("170Mi")},
						},
						LivenessProbe:  probe("/health", HealthPort, 60),
						ReadinessProbe: probe("/ready", ReadyPort, 0),
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							ReadOnlyRootFilesystem:   ptr.To(true),
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: configDir, ReadOnly: true}},
					}},
					Volumes: []corev1.Volume{{
						Name: "config",
						VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: Name},
							Items:                []corev1.KeyToPath{{Key: corefileKey, Path: corefileKey}},
						}},
					}},
				},
			},
		},
	}
}

func service(v Values) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(ServiceName, Namespace),
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: v.ClusterIP,
			Selector:  selector,
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: DNSPort, TargetPort: intstr.FromInt32(DNSPort), Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", Port: DNSPort, TargetPort: intstr.FromInt32(DNSPort), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

// Apply creates or updates every object by server-side apply as FieldManager.
func Apply(ctx context.Context, c client.Client, v Values) error {
	objs, err := Objects(v)
	if err != nil {
		return err
	}
	return apply.Objects(ctx, c, FieldManager, objs)
}

// WaitReady waits, at most timeout, until the Deployment's pods of the
// current generation are all available.
func WaitReady(ctx context.Context, c client.Reader, timeout time.Duration) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: Name}, d); err != nil {
			switch {
			case apierrors.IsNotFound(err):
				last = "the Deployment does not exist"
			case ctx.Err() == nil && last == "":
				// Only when nothing better was seen: near the deadline the
				// client's rate limiter refuses to wait, and that error
				// would hide the Deployment's state.
				last = err.Error()
			}
			return false, nil
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		s := d.Status
		last = fmt.Sprintf("%d of %d replicas available, %d updated (generation %d observed %d)",
			s.AvailableReplicas, want, s.UpdatedReplicas, d.Generation, s.ObservedGeneration)
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want &&
			s.AvailableReplicas == want && s.Replicas == want, nil
	})
	if err != nil {
		return fmt.Errorf("CoreDNS Deployment %s/%s not ready after %s: %s (look at `kubectl -n %s get pods -l k8s-app=kube-dns` and their events): %w",
			Namespace, Name, timeout, last, Namespace, err)
	}
	return nil
}

// Destroy deletes every object Apply creates; missing ones are fine.
func Destroy(ctx context.Context, c client.Client) error {
	objs := []client.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: Namespace}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: Namespace}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: Namespace}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ClusterRoleName}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: ClusterRoleName}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: Namespace}},
	}
	var errs []error
	for _, obj := range objs {
		if err := c.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %T %s: %w", obj, client.ObjectKeyFromObject(obj), err))
		}
	}
	return errors.Join(errs...)
}
