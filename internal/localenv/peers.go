package localenv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/apply"
	"github.com/marina-platform/marina/internal/kubeconfig"
)

// peerTokenLifetime is how long a peer's token lasts; every `make up`
// requests a new one.
const peerTokenLifetime = 365 * 24 * time.Hour

// peerFieldManager owns the Peers and their Secrets the environment makes.
const peerFieldManager = "marina-dev"

// PeerSecretName is the Secret, in the release namespace of a data
// center's management cluster, that holds the kubeconfig for peer's.
func PeerSecretName(peer string) string { return "peer-" + peer }

// peerDataCenters are the other data centers, whose replicators write into
// dc's management cluster (the chart's peers.dataCenters).
func (e *Env) peerDataCenters(dc DataCenter) []string {
	var out []string
	for _, o := range e.DataCenters() {
		if o.Name != dc.Name {
			out = append(out, o.Name)
		}
	}
	return out
}

// connectPeers makes every data center's management cluster a Peer of
// every other's. The kubeconfig in from's Secret reaches to's API server at
// the address pods of every data center reach it by, as the ServiceAccount
// to's chart made for from's replicator: it may write replicas from from
// and nothing else, never the administrator's rights.
func (e *Env) connectPeers(ctx context.Context) error {
	scheme := runtime.NewScheme()
	if err := errors.Join(corev1.AddToScheme(scheme), authenticationv1.AddToScheme(scheme), marinav1alpha1.AddToScheme(scheme)); err != nil {
		return err
	}
	dcs := e.DataCenters()
	for _, to := range dcs {
		target, err := controllerClientWith(to.Kubeconfig(), scheme)
		if err != nil {
			return err
		}
		ca, err := to.Cluster.CAPEM()
		if err != nil {
			return err
		}
		for _, from := range dcs {
			if from.Name == to.Name {
				continue
			}
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: MarinaNamespace, Name: MarinaRelease + "-peer-" + from.Name}}
			tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(peerTokenLifetime.Seconds()))}}
			if err := target.SubResource("token").Create(ctx, sa, tr); err != nil {
				return fmt.Errorf("%s: a token of %s for %s's replicator: %w", to.Name, sa.Name, from.Name, err)
			}
			data, err := kubeconfig.Write(kubeconfig.Config{Cluster: to.Name, User: sa.Name, Server: to.Cluster.Server(), CAData: ca, Token: tr.Status.Token})
			if err != nil {
				return err
			}
			source, err := controllerClientWith(from.Kubeconfig(), scheme)
			if err != nil {
				return err
			}
			objs := []client.Object{
				&corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
					ObjectMeta: metav1.ObjectMeta{Namespace: MarinaNamespace, Name: PeerSecretName(to.Name)},
					Type:       corev1.SecretTypeOpaque, Data: map[string][]byte{"kubeconfig": data}},
				&marinav1alpha1.Peer{TypeMeta: metav1.TypeMeta{APIVersion: marinav1alpha1.GroupVersion.String(), Kind: "Peer"},
					ObjectMeta: metav1.ObjectMeta{Name: to.Name},
					Spec: marinav1alpha1.PeerSpec{DataCenter: to.Name, KubeconfigSecretRef: marinav1alpha1.NamespacedSecretKeyReference{
						Namespace: MarinaNamespace, SecretKeyReference: marinav1alpha1.SecretKeyReference{Name: PeerSecretName(to.Name), Key: "kubeconfig"}}}},
			}
			if err := apply.Objects(ctx, source, peerFieldManager, objs); err != nil {
				return fmt.Errorf("%s: Peer %s: %w", from.Name, to.Name, err)
			}
		}
	}
	return nil
}

// WaitPeersReady waits until every data center's Peers are Ready: each
// reached the other's management cluster and replicated what it holds.
func (e *Env) WaitPeersReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		var notReady []string
		for _, dc := range e.DataCenters() {
			for _, p := range peerParts(ctx, dc, len(e.DataCenters())-1) {
				if !p.Healthy {
					notReady = append(notReady, p.Name+": "+p.Detail)
				}
			}
		}
		if len(notReady) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("peers not Ready after %s: %s", timeout, strings.Join(notReady, "; "))
		case <-time.After(time.Second):
		}
	}
}

// peerParts reports the Peers of dc's management cluster: want of them.
func peerParts(ctx context.Context, dc DataCenter, want int) []Part {
	scheme := runtime.NewScheme()
	_ = marinav1alpha1.AddToScheme(scheme)
	part := Part{DataCenter: dc.Name, Name: dc.Cluster.Name + " peers"}
	c, err := controllerClientWith(dc.Kubeconfig(), scheme)
	if err != nil {
		part.Detail = err.Error()
		return []Part{part}
	}
	list := &marinav1alpha1.PeerList{}
	if err := c.List(ctx, list); err != nil {
		part.Detail = err.Error()
		return []Part{part}
	}
	if len(list.Items) < want {
		part.Detail = fmt.Sprintf("%d Peers, want one for each of the %d other data centers", len(list.Items), want)
		return []Part{part}
	}
	var parts []Part
	for _, p := range list.Items {
		pp := Part{DataCenter: dc.Name, Name: dc.Cluster.Name + " peer " + p.Name}
		c := meta.FindStatusCondition(p.Status.Conditions, marinav1alpha1.ConditionReady)
		switch {
		case c == nil:
			pp.Detail = "not reconciled yet (is marina-sync running?)"
		case c.Status == metav1.ConditionTrue:
			pp.Healthy = true
			pp.Detail = fmt.Sprintf("Ready: %d objects replicated", p.Status.ReplicatedObjects)
			if p.Status.LastSyncTime != nil {
				pp.Detail += ", in sync at " + p.Status.LastSyncTime.UTC().Format(time.RFC3339)
			}
		default:
			pp.Detail = c.Reason + ": " + c.Message
		}
		parts = append(parts, pp)
	}
	slices.SortFunc(parts, func(a, b Part) int { return strings.Compare(a.Name, b.Name) })
	return parts
}
