package join

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

// UnjoinFederation removes the member from the control plane: the Cluster
// (whose deletion the engine completes: it empties the member's execution
// namespace and then drops its finalizer) and the credential Secrets. It
// says whether they are all gone; until then, call it again. Objects
// Marina did not make are left alone.
func UnjoinFederation(ctx context.Context, p Pair) (bool, error) {
	c := p.Federation
	cluster := &unstructured.Unstructured{}
	cluster.SetGroupVersionKind(ClusterGVK)
	err := c.Get(ctx, client.ObjectKey{Name: p.Cluster}, cluster)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return false, fmt.Errorf("control plane: Cluster %s: %w", p.Cluster, err)
	case p.ours(cluster):
		if cluster.GetDeletionTimestamp() == nil {
			if err := c.Delete(ctx, cluster); client.IgnoreNotFound(err) != nil {
				return false, fmt.Errorf("control plane: delete Cluster %s: %w", p.Cluster, err)
			}
		}
		// The engine still holds the member's credentials while it
		// removes what it propagated there: keep the Secrets until the
		// Cluster is gone.
		return false, nil
	}
	for _, name := range []string{p.Cluster, ImpersonatorSecretName(p.Cluster)} {
		if err := deleteIfOurs(ctx, c, p, &corev1.Secret{}, client.ObjectKey{Namespace: Namespace, Name: name}); err != nil {
			return false, fmt.Errorf("control plane: %w", err)
		}
	}
	return true, nil
}

// UnjoinMember removes from the member what the join to this control plane
// made: its token Secrets, which revokes the control plane's access. The
// ServiceAccounts, RBAC and namespace that Marina made go too once no
// other control plane's tokens remain.
func UnjoinMember(ctx context.Context, p Pair) error {
	c := p.Member
	mine := client.MatchingLabels{
		marinav1alpha1.LabelManagedBy:     marinav1alpha1.ManagedByValue,
		marinav1alpha1.LabelMemberCluster: p.Cluster,
	}
	tokens := &corev1.SecretList{}
	if err := c.List(ctx, tokens, client.InNamespace(Namespace), mine, client.HasLabels{LabelControlPlaneID}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("member: list token Secrets: %w", err)
	}
	others := 0
	for i := range tokens.Items {
		t := &tokens.Items[i]
		if t.Labels[LabelControlPlaneID] != p.ControlPlaneID {
			others++
			continue
		}
		if err := c.Delete(ctx, t); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("member: delete token Secret %s/%s: %w", Namespace, t.Name, err)
		}
	}
	if others > 0 {
		return nil
	}

	name := ClusterRoleName(p.Cluster)
	for _, o := range []struct {
		obj client.Object
		key client.ObjectKey
	}{
		{&rbacv1.ClusterRoleBinding{}, client.ObjectKey{Name: name}},
		{&rbacv1.ClusterRole{}, client.ObjectKey{Name: name}},
		{&corev1.ServiceAccount{}, client.ObjectKey{Namespace: Namespace, Name: ServiceAccountName(p.Cluster)}},
		{&corev1.ServiceAccount{}, client.ObjectKey{Namespace: Namespace, Name: ImpersonatorServiceAccount}},
	} {
		if err := deleteIfOurs(ctx, c, p, o.obj, o.key); err != nil {
			return fmt.Errorf("member: %w", err)
		}
	}
	return deleteNamespaceIfOnlyOurs(ctx, c, p)
}

// deleteNamespaceIfOnlyOurs deletes the member's karmada-cluster namespace
// when Marina made it for this member and nothing in it is anyone else's:
// a namespace deletion takes everything in it along.
func deleteNamespaceIfOnlyOurs(ctx context.Context, c client.Client, p Pair) error {
	ns := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: Namespace}, ns); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !p.ours(ns) || ns.DeletionTimestamp != nil {
		return nil
	}
	sas := &corev1.ServiceAccountList{}
	if err := c.List(ctx, sas, client.InNamespace(Namespace)); err != nil {
		return fmt.Errorf("member: list ServiceAccounts in %s: %w", Namespace, err)
	}
	for _, sa := range sas.Items {
		if sa.Name != "default" {
			return nil
		}
	}
	// Anything else in it is someone else's: the namespace stays.
	for _, l := range []client.ObjectList{&corev1.SecretList{}, &corev1.ConfigMapList{}, &corev1.PodList{}, &rbacv1.RoleList{}, &rbacv1.RoleBindingList{}} {
		if err := c.List(ctx, l, client.InNamespace(Namespace)); err != nil {
			return fmt.Errorf("member: list %T in %s: %w", l, Namespace, err)
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			return err
		}
		for _, o := range items {
			// Every namespace gets the cluster's CA bundle.
			if o.(client.Object).GetName() != "kube-root-ca.crt" {
				return nil
			}
		}
	}
	if err := c.Delete(ctx, ns); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("member: delete namespace %s: %w", Namespace, err)
	}
	return nil
}

// deleteIfOurs deletes the object at key when Marina made it for this
// member.
func deleteIfOurs(ctx context.Context, c client.Client, p Pair, obj client.Object, key client.ObjectKey) error {
	if err := c.Get(ctx, key, obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !p.ours(obj) {
		return nil
	}
	if err := c.Delete(ctx, obj, client.Preconditions{UID: ptrUID(obj)}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete %T %s: %w", obj, key, err)
	}
	return nil
}

// ptrUID makes the deletion conditional on the object read, so that one
// recreated meanwhile by someone else is not deleted.
func ptrUID(o metav1.Object) *types.UID {
	u := o.GetUID()
	return &u
}
