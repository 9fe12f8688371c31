package localenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/marina-platform/marina/internal/localenv/images"
	"github.com/marina-platform/marina/internal/localenv/network"
)

// MarinaNamespace and MarinaRelease are where and under which release name
// the environment installs charts/marina in every management cluster.
const (
	MarinaNamespace = "marina-system"
	MarinaRelease   = "marina"
)

// helm runs the helm binary built from source with its caches and
// configuration inside the environment's folder, so nothing is written to
// the user's own helm setup.
func (e *Env) helm(ctx context.Context, args ...string) error {
	home := filepath.Join(e.opts.Dir, "helm")
	cmd := exec.CommandContext(ctx, e.bin("helm"), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// installMarina installs (or upgrades) charts/marina into the data
// center's management cluster with the locally built images, exactly as a
// user would with `helm install`, and waits for its operators.
func (e *Env) installMarina(ctx context.Context, dc DataCenter, operatorTag string) error {
	err := e.helm(ctx, "upgrade", "--install", MarinaRelease, filepath.Join(e.opts.RepoRoot, "charts", "marina"),
		"--kubeconfig", dc.Kubeconfig(), "--namespace", MarinaNamespace, "--create-namespace",
		"--set", "dataCenter="+dc.Name,
		"--set", "image.registry="+images.Registry,
		"--set", "image.tag="+operatorTag,
		"--set", "image.pullPolicy=Never",
		// Notice a transit key rotation in seconds rather than a minute:
		// the environment is where people try rotations out.
		"--set-string", "operators.controlplane.extraArgs[0]=--vault-poll-interval=10s",
		// A successor takes over from a killed operator in 20 s rather
		// than a minute: the fault tests kill it at every stage.
		"--set-string", "leaderElection.leaseDuration=20s",
		"--set-string", "leaderElection.renewDeadline=15s",
		"--set-string", "leaderElection.retryPeriod=5s",
		// Members are probed, and their dispatch leases renewed, every
		// 10 s: a lost data center's members are dispatched to from the
		// other within about 30 s (the lease lasts three probes), where
		// the default is 90 s.
		"--set-string", "operators.register.extraArgs[0]=--probe-interval=10s",
		// Control planes here reach only the environment's own mirror and
		// Vault, which is a dev server on plain http in a network of the
		// environment's own.
		"--set-string", "operators.controlplane.allowedURLHosts[0]="+SharedHost.IP.String(),
		"--set-string", "operators.controlplane.vaultPlainHTTPHosts[0]="+SharedHost.IP.String(),
		// Every node's pod subnet is in it: other tenants' pods are kept
		// out of the control planes' API servers, the host's tests are not.
		"--set-string", "operators.controlplane.networkPolicy.podCIDRs[0]="+podSubnet,
		// PolicySets here may download from the environment's mirror.
		"--set-string", "operators.sync.allowedURLHosts[0]="+SharedHost.IP.String(),
		// Every other data center replicates into this one.
		"--set", "peers.dataCenters={"+strings.Join(e.peerDataCenters(dc), ",")+"}")
	if err != nil {
		return err
	}
	return waitDeployments(ctx, dc.Kubeconfig(), MarinaNamespace, 3*time.Minute, operatorDeployments()...)
}

func operatorDeployments() []string {
	var names []string
	for _, op := range Operators {
		names = append(names, "marina-"+op)
	}
	return names
}

// waitDeployments waits until each Deployment has rolled out: every
// replica updated and available. On timeout it says what the pods report.
func waitDeployments(ctx context.Context, kubeconfig, namespace string, timeout time.Duration, names ...string) error {
	cs, err := clientset(kubeconfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, name := range names {
		for {
			d, err := cs.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
			if err == nil && rolledOut(d) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("deployment %s/%s not available after %s: %s", namespace, name, timeout, podProblems(context.Background(), cs, namespace, d))
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

func rolledOut(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want &&
		d.Status.AvailableReplicas == want && d.Status.Replicas == want
}

// podProblems summarises why a Deployment's pods are not ready.
func podProblems(ctx context.Context, cs kubernetes.Interface, namespace string, d *appsv1.Deployment) string {
	if d == nil || d.Spec.Selector == nil {
		return "deployment not found"
	}
	sel := metav1.FormatLabelSelector(d.Spec.Selector)
	pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return err.Error()
	}
	if len(pods.Items) == 0 {
		return "no pods"
	}
	var msgs []string
	for _, p := range pods.Items {
		msg := p.Name + " " + string(p.Status.Phase)
		for _, c := range p.Status.ContainerStatuses {
			switch {
			case c.State.Waiting != nil:
				msg += fmt.Sprintf(", %s waiting: %s %s", c.Name, c.State.Waiting.Reason, c.State.Waiting.Message)
			case c.State.Terminated != nil:
				msg += fmt.Sprintf(", %s terminated: %s (exit %d)", c.Name, c.State.Terminated.Reason, c.State.Terminated.ExitCode)
			case !c.Ready:
				msg += fmt.Sprintf(", %s running, not ready (restarts %d)", c.Name, c.RestartCount)
			}
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue {
				msg += ", unschedulable: " + c.Message
			}
		}
		msgs = append(msgs, msg)
	}
	return strings.Join(msgs, "; ")
}

// waitHTTP waits until url answers 200, dialling from inside netns.
func waitHTTP(ctx context.Context, netns, url string) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: network.DialContext(netns)}}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s does not answer: %w", url, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// deploymentParts reports whether each Deployment has rolled out.
func deploymentParts(ctx context.Context, dataCenter, clusterName, kubeconfig, namespace string, names ...string) []Part {
	var parts []Part
	cs, err := clientset(kubeconfig)
	for _, name := range names {
		part := Part{DataCenter: dataCenter, Name: clusterName + " deployment " + namespace + "/" + name}
		if err != nil {
			part.Detail = err.Error()
			parts = append(parts, part)
			continue
		}
		d, err := cs.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case err != nil:
			part.Detail = err.Error()
		case rolledOut(d):
			part.Healthy, part.Detail = true, fmt.Sprintf("%d/%d available", d.Status.AvailableReplicas, d.Status.Replicas)
		default:
			part.Detail = podProblems(ctx, cs, namespace, d)
		}
		parts = append(parts, part)
	}
	return parts
}
