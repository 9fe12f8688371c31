package render

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestAnnotateCertificates renews each certificate of a production control
// plane in turn and checks that exactly the workloads that use it roll: a
// reviewed table, so that a template change that mounts a certificate
// somewhere new shows up here.
func TestAnnotateCertificates(t *testing.T) {
	cp := readControlPlane(t, filepath.Join("testdata", "production.controlplane.yaml"))
	users := map[string][]string{
		"apiserver-tls":                      {"Deployment/apiserver"},
		"front-proxy-client-tls":             {"Deployment/apiserver"},
		"service-account-tls":                {"Deployment/apiserver", "Deployment/kube-controller-manager"},
		"etcd-client-tls":                    {"Deployment/aggregated-apiserver", "Deployment/apiserver", "Deployment/search"},
		"etcd-server-tls":                    {"StatefulSet/etcd"},
		"etcd-peer-tls":                      {"StatefulSet/etcd"},
		"aggregated-apiserver-tls":           {"Deployment/aggregated-apiserver"},
		"aggregated-apiserver-client-tls":    {"Deployment/aggregated-apiserver"},
		"webhook-tls":                        {"Deployment/webhook"},
		"webhook-client-tls":                 {"Deployment/webhook"},
		"controller-manager-client-tls":      {"Deployment/controller-manager"},
		"scheduler-client-tls":               {"Deployment/scheduler"},
		"descheduler-client-tls":             {"Deployment/descheduler"},
		"metrics-adapter-tls":                {"Deployment/metrics-adapter"},
		"metrics-adapter-client-tls":         {"Deployment/metrics-adapter"},
		"search-tls":                         {"Deployment/search"},
		"search-client-tls":                  {"Deployment/search"},
		"scheduler-estimator-client-tls":     {"Deployment/descheduler", "Deployment/scheduler"},
		"kube-controller-manager-client-tls": {"Deployment/kube-controller-manager"},
		// Nothing mounts the admin's or the operator's certificate: the
		// operator builds kubeconfigs from them.
		"admin-tls":    nil,
		"operator-tls": nil,
	}
	secrets := map[string]*corev1.Secret{}
	for purpose := range users {
		name := cp.Name + "-" + purpose
		secrets[name] = &corev1.Secret{Type: corev1.SecretTypeTLS, Data: map[string][]byte{
			"tls.crt": []byte("cert of " + name), "tls.key": []byte("key of " + name), "ca.crt": []byte("ca"),
		}}
	}
	// A kubeconfig Secret names the mounted files: changing it rolls nothing.
	secrets[cp.Name+"-scheduler-kubeconfig"] = &corev1.Secret{Data: map[string][]byte{"kubeconfig": []byte("v1")}}

	c := load(t)
	render := func() map[string]string {
		objs, err := c.Render(cp.Namespace, ValuesFor(cp, testOptions(cp)))
		if err != nil {
			t.Fatal(err)
		}
		if err := AnnotateCertificates(objs, secrets); err != nil {
			t.Fatal(err)
		}
		sums := map[string]string{}
		for _, o := range objs {
			if k := o.GetKind(); k == "Deployment" || k == "StatefulSet" {
				sum, _, _ := unstructured.NestedString(o.Object, "spec", "template", "metadata", "annotations", CertificatesAnnotation)
				if sum == "" {
					t.Errorf("%s %s has no %s", k, o.GetName(), CertificatesAnnotation)
				}
				sums[k+"/"+strings.TrimPrefix(o.GetName(), cp.Name+"-")] = sum
			}
		}
		return sums
	}
	before := render()
	for _, purpose := range slices.Sorted(maps.Keys(users)) {
		t.Run(purpose, func(t *testing.T) {
			sec := secrets[cp.Name+"-"+purpose]
			sec.Data["tls.crt"] = append(sec.Data["tls.crt"], " renewed"...)
			after := render()
			var rolled []string
			for w, sum := range after {
				if sum != before[w] {
					rolled = append(rolled, w)
				}
			}
			slices.Sort(rolled)
			if !slices.Equal(rolled, users[purpose]) {
				t.Errorf("renewing %s rolled %v, want %v", purpose, rolled, users[purpose])
			}
			before = after
		})
	}
	secrets[cp.Name+"-scheduler-kubeconfig"].Data["kubeconfig"] = []byte("v2")
	if after := render(); !maps.Equal(after, before) {
		t.Errorf("a kubeconfig change rolled pods: %v → %v", before, after)
	}
}
