package v1alpha1

import (
	"reflect"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

var (
	secretReferenceType    = reflect.TypeFor[SecretReference]()
	secretKeyReferenceType = reflect.TypeFor[SecretKeyReference]()
	localObjectRefType     = reflect.TypeFor[corev1.LocalObjectReference]()
)

// SecretNames are the names of every Secret the spec references, sorted:
// the user's Secrets, which Marina reads but never prunes or deletes. It
// walks the spec's fields, so a new field of type SecretReference or
// SecretKeyReference (or an image pull secret list) is covered the day it
// is added, with no list to keep in step.
func (s *ControlPlaneSpec) SecretNames() []string {
	var names []string
	collectSecretNames(reflect.ValueOf(s).Elem(), false, &names)
	slices.Sort(names)
	return slices.Compact(names)
}

// collectSecretNames appends the names of the Secret references under v.
// inSecretList says v is an element of a list of Secrets by
// LocalObjectReference, such as imagePullSecrets.
func collectSecretNames(v reflect.Value, inSecretList bool, names *[]string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			collectSecretNames(v.Elem(), inSecretList, names)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			collectSecretNames(v.Index(i), inSecretList, names)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			collectSecretNames(v.MapIndex(k), inSecretList, names)
		}
	case reflect.Struct:
		switch t := v.Type(); {
		case t == secretReferenceType, t == secretKeyReferenceType, t == localObjectRefType && inSecretList:
			if n := v.FieldByName("Name").String(); n != "" {
				*names = append(*names, n)
			}
			return
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			collectSecretNames(v.Field(i), isSecretList(f), names)
		}
	}
}

// isSecretList says whether a field lists Secrets by LocalObjectReference.
func isSecretList(f reflect.StructField) bool {
	return f.Type.Kind() == reflect.Slice && f.Type.Elem() == localObjectRefType && f.Name == "ImagePullSecrets"
}
