package controller

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/internal/secrets"
)

// Indexes of MemberClusters by what they read, so that a change to a
// Secret, a ControlPlane or a Cluster API Cluster wakes exactly the
// members that use it.
const (
	indexSecret       = "marina.dev/secret"
	indexControlPlane = "marina.dev/control-plane"
	indexClusterAPI   = "marina.dev/cluster-api"
)

// ManagerOptions are the manager options the reconciler relies on: cached
// reads of the Cluster API Clusters it watches, which it reads as
// unstructured objects; and no cache of every Secret in the cluster
// (package secrets).
func ManagerOptions(o *ctrl.Options) {
	if o.Client.Cache == nil {
		o.Client.Cache = &client.CacheOptions{}
	}
	o.Client.Cache.Unstructured = true
	secrets.ManagerOptions(o)
}

func setupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	idx := mgr.GetFieldIndexer()
	for name, fn := range map[string]client.IndexerFunc{
		indexSecret: func(o client.Object) []string {
			mc := o.(*marinav1alpha1.MemberCluster)
			switch {
			case mc.Spec.KubeconfigSecretRef != nil:
				return []string{mc.Spec.KubeconfigSecretRef.Name}
			case mc.Spec.ClusterRef != nil:
				return []string{mc.Spec.ClusterRef.Name + "-kubeconfig"}
			}
			return nil
		},
		indexControlPlane: func(o client.Object) []string {
			mc := o.(*marinav1alpha1.MemberCluster)
			var out []string
			for _, ref := range mc.Spec.ControlPlanes {
				out = append(out, ref.Name)
			}
			for _, st := range mc.Status.ControlPlanes {
				out = append(out, st.Name)
			}
			return out
		},
		indexClusterAPI: func(o client.Object) []string {
			if ref := o.(*marinav1alpha1.MemberCluster).Spec.ClusterRef; ref != nil {
				return []string{ref.Name}
			}
			return nil
		},
	} {
		if err := idx.IndexField(ctx, &marinav1alpha1.MemberCluster{}, name, fn); err != nil {
			return fmt.Errorf("index MemberClusters by %s: %w", name, err)
		}
	}
	return nil
}

// enqueueBy maps an object to the MemberClusters of its namespace whose
// index holds its name.
func enqueueBy(c client.Client, index string) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &marinav1alpha1.MemberClusterList{}
		if err := c.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: o.GetName()}); err != nil {
			return nil
		}
		out := make([]reconcile.Request, 0, len(list.Items))
		for _, mc := range list.Items {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&mc)})
		}
		return out
	})
}

func enqueueBySecret(c client.Client) handler.EventHandler { return enqueueBy(c, indexSecret) }
func enqueueByControlPlane(c client.Client) handler.EventHandler {
	return enqueueBy(c, indexControlPlane)
}
func enqueueByClusterAPI(c client.Client) handler.EventHandler { return enqueueBy(c, indexClusterAPI) }

// capiWatchObject is the Cluster API Cluster at the version served.
func capiWatchObject(gvk schema.GroupVersionKind) client.Object {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u
}
