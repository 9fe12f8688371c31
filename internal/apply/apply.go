// Package apply applies typed objects with server-side apply: the local
// environment's (CoreDNS, the storage provisioner) and the sync operator's
// replicas in peer data centers.
package apply

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Configuration turns a typed object into the fields to apply, without the
// empty status and creation timestamps that typed objects serialise:
// applying those would claim fields the manager never means to own.
func Configuration(obj client.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %s to unstructured: %w", obj.GetName(), err)
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
	return u, nil
}

// Objects applies each object in turn as fieldManager, taking over fields
// another manager set. Each object carries its TypeMeta.
func Objects(ctx context.Context, c client.Client, fieldManager string, objs []client.Object) error {
	for _, obj := range objs {
		u, err := Configuration(obj)
		if err != nil {
			return err
		}
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, client.ObjectKeyFromObject(obj), err)
		}
	}
	return nil
}
