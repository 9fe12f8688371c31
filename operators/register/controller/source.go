package controller

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/kubeconfig"
	"github.com/marina-platform/marina/operators/register/capi"
)

const (
	// DefaultKubeconfigKey is the key of a kubeconfigSecretRef's Secret.
	DefaultKubeconfigKey = "kubeconfig"
	// capiKubeconfigKey is the key of Cluster API's <name>-kubeconfig Secret.
	capiKubeconfigKey = "value"
)

// credentials are a member's kubeconfig as its source gives it.
type credentials struct {
	config *rest.Config
	// key identifies the kubeconfig's content, so that a client is made
	// again, and the joins redone, when it changes.
	key [32]byte
}

// sourceProblem is why a member's credentials cannot be had now: a reason
// and a message for its conditions. gone says the source itself was
// deleted (a Cluster API Cluster), which unjoins the member.
type sourceProblem struct {
	reason, message string
	gone            bool
}

func (p *sourceProblem) Error() string { return p.message }

// memberCredentials reads the member's kubeconfig from its source.
func (r *Reconciler) memberCredentials(ctx context.Context, mc *marinav1alpha1.MemberCluster) (*credentials, error) {
	if ref := mc.Spec.KubeconfigSecretRef; ref != nil {
		return r.kubeconfigFromSecret(ctx, mc.Namespace, ref.Name, ref.KeyOr(DefaultKubeconfigKey), marinav1alpha1.ReasonSecretNotFound)
	}
	if ref := mc.Spec.ClusterRef; ref != nil {
		if err := r.clusterAPIGate(ctx, mc.Namespace, ref.Name); err != nil {
			return nil, err
		}
		return r.kubeconfigFromSecret(ctx, mc.Namespace, ref.Name+"-kubeconfig", capiKubeconfigKey, marinav1alpha1.ReasonWaitingForClusterAPI)
	}
	return nil, &sourceProblem{reason: marinav1alpha1.ReasonInvalidSecret, message: "neither spec.kubeconfigSecretRef nor spec.clusterRef is set"}
}

// kubeconfigFromSecret reads and parses a kubeconfig; missing is the
// reason to give when the Secret does not exist (yet).
func (r *Reconciler) kubeconfigFromSecret(ctx context.Context, namespace, name, key, missing string) (*credentials, error) {
	sec := &corev1.Secret{}
	if err := r.secrets.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, sec); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &sourceProblem{reason: missing, message: fmt.Sprintf("the kubeconfig Secret %s does not exist", name)}
		}
		return nil, err
	}
	data := sec.Data[key]
	if len(data) == 0 {
		return nil, &sourceProblem{reason: marinav1alpha1.ReasonInvalidSecret, message: fmt.Sprintf("Secret %s has no key %q with a kubeconfig", name, key)}
	}
	if err := onlyInlineCredentials(data); err != nil {
		return nil, &sourceProblem{reason: marinav1alpha1.ReasonInvalidSecret, message: fmt.Sprintf("Secret %s key %q: %v", name, key, err)}
	}
	cfg, err := kubeconfig.RESTConfig(data)
	if err != nil {
		// The parser's message names the broken field, never a credential.
		return nil, &sourceProblem{reason: marinav1alpha1.ReasonInvalidSecret, message: fmt.Sprintf("Secret %s key %q: %v", name, key, err)}
	}
	cfg.Timeout = 15 * time.Second
	cfg.QPS, cfg.Burst = 10, 20
	cfg.UserAgent = FieldManager
	return &credentials{config: cfg, key: sha256.Sum256(data)}, nil
}

// clusterAPIGate lets a Cluster API Cluster join once its control plane is
// initialized, and not while it is paused; a Cluster being deleted, or gone,
// is a source that went away.
func (r *Reconciler) clusterAPIGate(ctx context.Context, namespace, name string) error {
	c, err := r.capiCluster(ctx, namespace, name)
	if err != nil {
		return err
	}
	if c == nil {
		return &sourceProblem{reason: marinav1alpha1.ReasonWaitingForClusterAPI, gone: true,
			message: fmt.Sprintf("the Cluster API Cluster %s does not exist", name)}
	}
	if c.GetDeletionTimestamp() != nil {
		return &sourceProblem{reason: marinav1alpha1.ReasonWaitingForClusterAPI, gone: true,
			message: fmt.Sprintf("the Cluster API Cluster %s is being deleted", name)}
	}
	if capi.Paused(c) {
		return &sourceProblem{reason: marinav1alpha1.ReasonPaused, message: fmt.Sprintf("the Cluster API Cluster %s is paused; the join waits until it is resumed", name)}
	}
	if !capi.ControlPlaneInitialized(c) {
		return &sourceProblem{reason: marinav1alpha1.ReasonWaitingForClusterAPI, message: fmt.Sprintf("the control plane of Cluster API Cluster %s is not initialized yet", name)}
	}
	return nil
}

// capiCluster reads a Cluster API Cluster at v1beta2, or v1beta1 where the
// management cluster serves no v1beta2; nil when it does not exist.
func (r *Reconciler) capiCluster(ctx context.Context, namespace, name string) (*unstructured.Unstructured, error) {
	for _, gvk := range capi.Versions {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, u)
		switch {
		case err == nil:
			return u, nil
		case apierrors.IsNotFound(err):
			return nil, nil
		case meta.IsNoMatchError(err):
			continue
		default:
			return nil, fmt.Errorf("read Cluster API Cluster %s: %w", name, err)
		}
	}
	return nil, &sourceProblem{reason: marinav1alpha1.ReasonWaitingForClusterAPI,
		message: "the management cluster serves no Cluster API Clusters (cluster.x-k8s.io v1beta2 or v1beta1): install Cluster API, or use spec.kubeconfigSecretRef"}
}

// onlyInlineCredentials refuses a kubeconfig that names files or runs
// programs: read in the operator's pod, a path such as
// /var/run/secrets/kubernetes.io/serviceaccount/token would hand the
// operator's own credentials to whatever server the kubeconfig names.
func onlyInlineCredentials(data []byte) error {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return fmt.Errorf("read kubeconfig: %w", err)
	}
	for name, c := range cfg.Clusters {
		if c.CertificateAuthority != "" {
			return fmt.Errorf("cluster %q reads its CA from the file %s: put it inline (certificate-authority-data)", name, c.CertificateAuthority)
		}
	}
	for name, u := range cfg.AuthInfos {
		switch {
		case u.TokenFile != "", u.ClientCertificate != "", u.ClientKey != "":
			return fmt.Errorf("user %q reads credentials from files: put them inline (token, client-certificate-data, client-key-data)", name)
		case u.Exec != nil || u.AuthProvider != nil:
			return fmt.Errorf("user %q runs a credential plugin, which the operator cannot: give it a token or a client certificate", name)
		case u.Impersonate != "" || len(u.ImpersonateGroups) > 0:
			return fmt.Errorf("user %q impersonates another: give the member's own credentials", name)
		}
	}
	return nil
}
