package render

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// CertificatesAnnotation holds, on a workload's pod template, a hash of the
// certificate Secrets its pods mount: a renewed certificate rolls exactly
// the pods that read it.
const CertificatesAnnotation = "checksum.marina.dev/certificates"

// AnnotateCertificates sets CertificatesAnnotation on the pod template of
// every Deployment and StatefulSet in objs, hashing the TLS Secrets of
// secrets (by name) that its volumes name. Which Secrets a pod mounts is
// read from the rendered object itself, so the chart stays the one place
// that says it. Other Secrets (kubeconfigs naming the mounted files,
// configuration that is reloaded) do not roll pods. A workload that mounts
// none of secrets gets no annotation.
func AnnotateCertificates(objs []*unstructured.Unstructured, secrets map[string]*corev1.Secret) error {
	for _, obj := range objs {
		if k := obj.GetKind(); k != "Deployment" && k != "StatefulSet" {
			continue
		}
		names, err := mountedSecrets(obj)
		if err != nil {
			return fmt.Errorf("%s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
		h := sha256.New()
		n := 0
		for _, name := range names {
			sec, ok := secrets[name]
			if !ok || sec.Type != corev1.SecretTypeTLS {
				continue
			}
			n++
			for _, k := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey, "ca.crt"} {
				fmt.Fprintf(h, "%s/%s=%d:", name, k, len(sec.Data[k]))
				h.Write(sec.Data[k])
			}
		}
		if n == 0 {
			continue
		}
		ann, _, _ := unstructured.NestedStringMap(obj.Object, "spec", "template", "metadata", "annotations")
		if ann == nil {
			ann = map[string]string{}
		}
		ann[CertificatesAnnotation] = hex.EncodeToString(h.Sum(nil))[:16]
		if err := unstructured.SetNestedStringMap(obj.Object, ann, "spec", "template", "metadata", "annotations"); err != nil {
			return err
		}
	}
	return nil
}

// mountedSecrets are the Secrets a workload's pod template mounts, sorted:
// secret volumes and the secret sources of projected volumes.
func mountedSecrets(obj *unstructured.Unstructured) ([]string, error) {
	vols, _, err := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "volumes")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, raw := range vols {
		v, _ := raw.(map[string]any)
		if n, ok, _ := unstructured.NestedString(v, "secret", "secretName"); ok {
			names = append(names, n)
		}
		sources, _, _ := unstructured.NestedSlice(v, "projected", "sources")
		for _, rs := range sources {
			s, _ := rs.(map[string]any)
			if n, ok, _ := unstructured.NestedString(s, "secret", "name"); ok {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}
