package localenv

import (
	"context"
	"errors"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

// The DataStore every management cluster gets: the shared external etcd,
// with its root certificate and client CA in Marina's namespace, where no
// tenant reads. Each data center's control planes get prefixes under
// /marina/<data center>.
const (
	DataStoreName             = "shared-etcd"
	DataStoreRootSecretName   = "shared-etcd-root"
	DataStoreClientCASecretNm = "shared-etcd-client-ca"
)

// DataStore is the data center's DataStore, and its two Secrets.
func (e *Env) DataStore(dc DataCenter) (*marinav1alpha1.DataStore, []*corev1.Secret, error) {
	etcd := e.ExternalEtcd()
	ca, cert, key := etcd.ClientFiles()
	caCert, caKey := etcd.ClientCAFiles()
	read := func(files map[string]string) (map[string][]byte, error) {
		data := map[string][]byte{}
		for k, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("external etcd: %w", err)
			}
			data[k] = b
		}
		return data, nil
	}
	root, err := read(map[string]string{"ca.crt": ca, corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key})
	if err != nil {
		return nil, nil, err
	}
	clientCA, err := read(map[string]string{corev1.TLSCertKey: caCert, corev1.TLSPrivateKeyKey: caKey})
	if err != nil {
		return nil, nil, err
	}
	labels := map[string]string{managedByLabel: "marina-dev"}
	secret := func(name string, data map[string][]byte) *corev1.Secret {
		return &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Namespace: MarinaNamespace, Name: name, Labels: labels},
			Type:       corev1.SecretTypeOpaque,
			Data:       data,
		}
	}
	ds := &marinav1alpha1.DataStore{
		TypeMeta:   metav1.TypeMeta{APIVersion: marinav1alpha1.GroupVersion.String(), Kind: "DataStore"},
		ObjectMeta: metav1.ObjectMeta{Name: DataStoreName, Labels: labels},
		Spec: marinav1alpha1.DataStoreSpec{
			Endpoints:         etcd.Endpoints(),
			RootSecretRef:     marinav1alpha1.NamespacedSecretReference{Namespace: MarinaNamespace, Name: DataStoreRootSecretName},
			ClientCASecretRef: marinav1alpha1.NamespacedSecretReference{Namespace: MarinaNamespace, Name: DataStoreClientCASecretNm},
			KeyPrefix:         "/marina/" + dc.Name,
		},
	}
	return ds, []*corev1.Secret{secret(DataStoreRootSecretName, root), secret(DataStoreClientCASecretNm, clientCA)}, nil
}

// ensureDataStore applies the data center's DataStore and its Secrets.
func (e *Env) ensureDataStore(ctx context.Context, dc DataCenter) error {
	ds, secrets, err := e.DataStore(dc)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(corev1.AddToScheme(scheme), marinav1alpha1.AddToScheme(scheme)); err != nil {
		return err
	}
	c, err := controllerClientWith(dc.Kubeconfig(), scheme)
	if err != nil {
		return err
	}
	for _, s := range secrets {
		if err := c.Patch(ctx, s, client.Apply, client.FieldOwner("marina-dev"), client.ForceOwnership); err != nil {
			return fmt.Errorf("Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
	}
	if err := c.Patch(ctx, ds, client.Apply, client.FieldOwner("marina-dev"), client.ForceOwnership); err != nil {
		return fmt.Errorf("DataStore %s: %w", ds.Name, err)
	}
	return nil
}
