package v1alpha1

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestSecretNamesCoversEveryReference walks ControlPlaneSpec's type: every
// field that can name a Secret is filled with a name of its own, and
// SecretNames must return all of them. A field that names a Secret in
// some other way (a string, a new reference type) fails the test, so the
// list of the user's Secrets can never miss one.
func TestSecretNamesCoversEveryReference(t *testing.T) {
	spec := &ControlPlaneSpec{}
	var want []string
	fill(t, reflect.ValueOf(spec).Elem(), "spec", false, &want)
	if len(want) < 6 {
		t.Fatalf("found %d Secret references in ControlPlaneSpec (%v); expected at least the CA, etcd TLS, Vault token, AppRole secret ID, Vault CA bundle and image pull secrets", len(want), want)
	}
	slices.Sort(want)
	t.Logf("Secret references in ControlPlaneSpec: %v", want)
	if got := spec.SecretNames(); !slices.Equal(got, want) {
		t.Errorf("SecretNames() = %v, want %v", got, want)
	}
}

// fill sets every Secret reference under v to a name made of its path and
// fails on a field that looks like it names a Secret but is not one of the
// reference types.
func fill(t *testing.T, v reflect.Value, path string, inSecretList bool, names *[]string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), path, inSecretList, names)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(t, v.Index(0), path+"[0]", inSecretList, names)
	case reflect.Struct:
		switch ty := v.Type(); {
		case ty == secretReferenceType, ty == secretKeyReferenceType, ty == localObjectRefType && inSecretList:
			name := strings.ToLower(strings.NewReplacer(".", "-", "[", "", "]", "").Replace(path))
			v.FieldByName("Name").SetString(name)
			*names = append(*names, name)
			return
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			p := fmt.Sprintf("%s.%s", path, f.Name)
			if f.Type.Kind() == reflect.String && strings.Contains(strings.ToLower(f.Name), "secret") {
				t.Errorf("%s is a string that names a Secret: use SecretReference or SecretKeyReference, so that SecretNames finds it", p)
			}
			fill(t, v.Field(i), p, isSecretList(f), names)
		}
	}
}
