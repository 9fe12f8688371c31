// Package prune removes objects Marina made, and only those, from a
// cluster it does not own as a whole, such as a federation API server
// where users and the engine make objects too.
package prune

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// IfMarked deletes obj (its kind, namespace and name set) when it exists and
// carries every one of labels: never an object someone else made under the
// same name. obj is read into.
func IfMarked(ctx context.Context, c client.Client, obj client.Object, labels map[string]string) error {
	key := client.ObjectKeyFromObject(obj)
	kind := fmt.Sprintf("%T", obj)
	if gvk := obj.GetObjectKind().GroupVersionKind(); gvk.Kind != "" {
		kind = gvk.Kind
	}
	if err := c.Get(ctx, key, obj); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil
		}
		return fmt.Errorf("read %s %s: %w", kind, key, err)
	}
	for k, v := range labels {
		if obj.GetLabels()[k] != v {
			return nil
		}
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		return nil
	}
	if err := c.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete %s %s: %w", kind, key, err)
	}
	return nil
}

// IfAppliedBy deletes obj when it exists and fieldManager applied some of
// it: for objects an older Marina made without labels.
func IfAppliedBy(ctx context.Context, c client.Client, obj client.Object, fieldManager string) error {
	key := client.ObjectKeyFromObject(obj)
	if err := c.Get(ctx, key, obj); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil
		}
		return fmt.Errorf("read %T %s: %w", obj, key, err)
	}
	for _, m := range obj.GetManagedFields() {
		if m.Manager == fieldManager {
			if err := c.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("delete %T %s: %w", obj, key, err)
			}
			return nil
		}
	}
	return nil
}
