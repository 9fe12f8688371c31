// Package ownership tells Marina's objects from everyone else's in a
// cluster Marina does not own as a whole, such as a federation API server
// where users and the engine make objects too: an object is Marina's when
// it carries Marina's labels, or when Marina's field manager applied it (an
// older Marina made some without labels). Marina only changes and deletes
// its own.
package ownership

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ErrNotOurs: an object Marina needs exists and someone else made it.
var ErrNotOurs = errors.New("made by someone else")

// Ours says whether obj carries every one of labels or was applied by
// fieldManager.
func Ours(obj client.Object, labels map[string]string, fieldManager string) bool {
	marked := len(labels) > 0
	for k, v := range labels {
		if obj.GetLabels()[k] != v {
			marked = false
			break
		}
	}
	if marked {
		return true
	}
	for _, m := range obj.GetManagedFields() {
		if m.Manager == fieldManager {
			return true
		}
	}
	return false
}

// Claim returns nil when obj (its kind and name set) does not exist or is
// Marina's, so that applying it takes nothing from anyone; otherwise an
// error wrapping ErrNotOurs that names the object and says what to do.
// obj is read into.
func Claim(ctx context.Context, c client.Client, obj client.Object, labels map[string]string, fieldManager string) error {
	key := client.ObjectKeyFromObject(obj)
	if err := c.Get(ctx, key, obj); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil
		}
		return fmt.Errorf("read %s %s: %w", kind(obj), key, err)
	}
	if Ours(obj, labels, fieldManager) {
		return nil
	}
	return fmt.Errorf("%s %s exists and is %w; Marina leaves it alone: delete it, or rename yours, so that Marina can make its own", kind(obj), key, ErrNotOurs)
}

// Delete deletes obj (its kind, namespace and name set) when it exists and
// is Marina's. obj is read into.
func Delete(ctx context.Context, c client.Client, obj client.Object, labels map[string]string, fieldManager string) error {
	key := client.ObjectKeyFromObject(obj)
	if err := c.Get(ctx, key, obj); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil
		}
		return fmt.Errorf("read %s %s: %w", kind(obj), key, err)
	}
	if !Ours(obj, labels, fieldManager) || !obj.GetDeletionTimestamp().IsZero() {
		return nil
	}
	if err := c.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete %s %s: %w", kind(obj), key, err)
	}
	return nil
}

func kind(obj client.Object) string {
	if gvk := obj.GetObjectKind().GroupVersionKind(); gvk.Kind != "" {
		return gvk.Kind
	}
	t := reflect.TypeOf(obj)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}
