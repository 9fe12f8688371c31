package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/operators/controlplane/externaletcd"
)

// A control plane on a DataStore never holds the DataStore's credentials:
// the operator reads them from the platform team's namespace, makes the
// control plane an etcd user and role covering only the prefix it assigns,
// and gives its API servers a client certificate for that user alone. So a
// hand-written spec reaches no other control plane's keys: etcd itself
// refuses them.

// clientCertValidity is the life of a control plane's etcd client
// certificate; it is made again with a third of it left.
const clientCertValidity = 365 * 24 * time.Hour

// EtcdClientSecretName is the Secret with a control plane's etcd client
// certificate on a DataStore.
func EtcdClientSecretName(cp *marinav1alpha1.ControlPlane) string { return cp.Name + "-etcd-client" }

// dataStoreName is the DataStore the control plane uses, or "".
func dataStoreName(cp *marinav1alpha1.ControlPlane) string {
	if ext := cp.Spec.Etcd.External; ext != nil {
		return ext.DataStore
	}
	return ""
}

// tenantOf is the control plane's part of its DataStore.
func tenantOf(ds *marinav1alpha1.DataStore, cp *marinav1alpha1.ControlPlane) externaletcd.Tenant {
	return externaletcd.Tenant{User: marinav1alpha1.EtcdUserFor(string(cp.UID)), Prefix: ds.KeyPrefixFor(string(cp.UID))}
}

// loadDataStore reads the DataStore the spec names, before anything is
// rendered: the API servers' flags come from it. A control plane that is
// new to a DataStore being deleted is refused; one already on it goes on,
// since the DataStore waits for it.
func (r *Reconciler) loadDataStore(ctx context.Context, s *scope) (result, error) {
	name := dataStoreName(s.cp)
	if name == "" {
		return proceed, nil
	}
	ds := &marinav1alpha1.DataStore{}
	err := r.Client.Get(ctx, client.ObjectKey{Name: name}, ds)
	if apierrors.IsNotFound(err) {
		s.blocked(marinav1alpha1.ConditionEtcdReady, marinav1alpha1.ReasonDataStoreNotFound, fmt.Sprintf(
			"DataStore %q named in spec.etcd.external.dataStore does not exist; ask the platform team which DataStores there are", name))
		s.notReady(marinav1alpha1.ReasonDataStoreNotFound, "spec.etcd.external.dataStore: DataStore "+name+" does not exist")
		return retryAfter(r.RetryAfter), nil
	}
	if err != nil {
		return proceed, fmt.Errorf("read DataStore %s: %w", name, err)
	}
	if !ds.DeletionTimestamp.IsZero() && s.cp.Status.Etcd == nil {
		s.blocked(marinav1alpha1.ConditionEtcdReady, marinav1alpha1.ReasonDataStoreNotReady, fmt.Sprintf(
			"DataStore %s is being deleted and takes no new control planes; name another in spec.etcd.external.dataStore", name))
		s.notReady(marinav1alpha1.ReasonDataStoreNotReady, "DataStore "+name+" is being deleted")
		return retryAfter(r.RetryAfter), nil
	}
	s.dataStore = ds
	return proceed, nil
}

// dataStoreAccess is what the operator itself uses on a DataStore: the
// root user's client, and the CA that signs client certificates.
type dataStoreAccess struct {
	root           externaletcd.Cluster
	caCert, caKey  []byte
	serverCABundle []byte
}

// dataStoreCredentials reads the DataStore's two Secrets. A problem is
// returned as a reason and a message for the platform team, who alone can
// fix it; the message names no key material.
func dataStoreCredentials(ctx context.Context, reader client.Reader, ds *marinav1alpha1.DataStore) (dataStoreAccess, string, string, error) {
	root := ds.Spec.RootSecretRef
	data, reason, problem, err := readSecretData(ctx, reader, root.Namespace, root.Name, "DataStore "+ds.Name+" spec.rootSecretRef",
		"ca.crt", corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	if err != nil || problem != "" {
		return dataStoreAccess{}, reason, problem, err
	}
	ca := ds.Spec.ClientCASecretRef
	caData, reason, problem, err := readSecretData(ctx, reader, ca.Namespace, ca.Name, "DataStore "+ds.Name+" spec.clientCASecretRef",
		corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	if err != nil || problem != "" {
		return dataStoreAccess{}, reason, problem, err
	}
	return dataStoreAccess{
		root:           externaletcd.Cluster{Endpoints: ds.Spec.Endpoints, CA: data["ca.crt"], Cert: data[corev1.TLSCertKey], Key: data[corev1.TLSPrivateKeyKey]},
		caCert:         caData[corev1.TLSCertKey],
		caKey:          caData[corev1.TLSPrivateKeyKey],
		serverCABundle: data["ca.crt"],
	}, "", "", nil
}

// tenantCheck is the last time a control plane's user and role were made
// sure of, for which DataStore spec.
type tenantCheck struct {
	key string
	at  time.Time
}

// reconcileDataStoreEtcd makes the control plane's etcd user and role, its
// client certificate, and checks that etcd answers that certificate.
func (r *Reconciler) reconcileDataStoreEtcd(ctx context.Context, s *scope) (result, error) {
	const cond = marinav1alpha1.ConditionEtcdReady
	cp, ds := s.cp, s.dataStore
	platform := func(reason, problem string) (result, error) {
		s.blocked(cond, reason, fmt.Sprintf("DataStore %s: %s; the platform team must fix the DataStore", ds.Name, problem))
		return retryAfter(r.RetryAfter), nil
	}
	access, _, problem, err := dataStoreCredentials(ctx, r.APIReader, ds)
	if err != nil {
		return proceed, err
	}
	if problem != "" {
		return platform(marinav1alpha1.ReasonDataStoreNotReady, problem)
	}
	t := tenantOf(ds, cp)
	key := fmt.Sprintf("%s/%d/%s", ds.UID, ds.Generation, t.Prefix)
	if v, ok := r.tenantChecks.Load(cp.UID); !ok || v.(tenantCheck).key != key || time.Since(v.(tenantCheck).at) > etcdCheckValid {
		if err := access.root.EnsureTenant(ctx, t); err != nil {
			r.tenantChecks.Delete(cp.UID)
			switch {
			case errors.Is(err, externaletcd.ErrAuthDisabled):
				return platform(marinav1alpha1.ReasonEtcdAuthDisabled, "etcd authentication is off, so no etcd role would keep control planes apart; enable it (etcdctl auth enable)")
			case isInvalidTLS(err):
				return platform(marinav1alpha1.ReasonDataStoreNotReady, "spec.rootSecretRef: "+err.Error())
			}
			return platform(marinav1alpha1.ReasonEtcdUnreachable, fmt.Sprintf("cannot make etcd user %s: %v", t.User, err))
		}
		r.tenantChecks.Store(cp.UID, tenantCheck{key: key, at: time.Now()})
		// Once the user exists, deletion must remove it and the keys.
		cp.Status.Etcd = &marinav1alpha1.EtcdStatus{
			KeyPrefix: t.Prefix, User: t.User,
			ClientSecretRef: &marinav1alpha1.SecretReference{Name: EtcdClientSecretName(cp)},
		}
		log.FromContext(ctx).V(1).Info("etcd user and role are in place", "dataStore", ds.Name, "user", t.User, "prefix", t.Prefix)
	}

	tenant, err := r.ensureEtcdClientSecret(ctx, s, access, t)
	if err != nil {
		if isInvalidTLS(err) {
			return platform(marinav1alpha1.ReasonDataStoreNotReady, "spec.clientCASecretRef: "+err.Error())
		}
		return proceed, err
	}
	if err := r.checkEtcd(ctx, cp, tenant); err != nil {
		s.blocked(cond, marinav1alpha1.ReasonEtcdUnreachable, fmt.Sprintf(
			"DataStore %s does not answer the control plane's etcd user %s: %v", ds.Name, t.User, err))
		return retryAfter(r.RetryAfter), nil
	}
	s.done(cond, fmt.Sprintf("DataStore %s answers; keys under %s, as etcd user %s", ds.Name, t.Prefix, t.User))
	return proceed, nil
}

// ensureEtcdClientSecret keeps the Secret with the user's client
// certificate, making a new certificate only when the one there is missing,
// for another user or CA, or a third from its end; the API servers mount it.
func (r *Reconciler) ensureEtcdClientSecret(ctx context.Context, s *scope, access dataStoreAccess, t externaletcd.Tenant) (externaletcd.Cluster, error) {
	cluster := externaletcd.Cluster{Endpoints: s.dataStore.Spec.Endpoints, CA: access.serverCABundle}
	name := EtcdClientSecretName(s.cp)
	if sec := s.secrets[name]; sec != nil && bytes.Equal(sec.Data["ca.crt"], access.serverCABundle) &&
		!externaletcd.NeedsReissue(sec.Data[corev1.TLSCertKey], access.caCert, t.User, time.Now()) {
		cluster.Cert, cluster.Key = sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey]
		return cluster, nil
	}
	cc, err := externaletcd.IssueClientCertificate(access.caCert, access.caKey, t.User, clientCertValidity)
	if err != nil {
		return cluster, err
	}
	if err := r.applySecret(ctx, s.cp, name, "etcd", map[string][]byte{
		"ca.crt": access.serverCABundle, corev1.TLSCertKey: cc.Cert, corev1.TLSPrivateKeyKey: cc.Key,
	}); err != nil {
		return cluster, err
	}
	log.FromContext(ctx).Info("Issued the control plane's etcd client certificate", "secret", name, "user", t.User)
	cluster.Cert, cluster.Key = cc.Cert, cc.Key
	return cluster, nil
}

// cleanupDataStore removes, on deletion, the control plane's part of its
// DataStore: the keys under the prefix Marina assigned (deletionPolicy
// Delete), then the user and role. It returns a message when it cannot.
func (r *Reconciler) cleanupDataStore(ctx context.Context, cp *marinav1alpha1.ControlPlane) (string, error) {
	name := dataStoreName(cp)
	ds := &marinav1alpha1.DataStore{}
	err := r.Client.Get(ctx, client.ObjectKey{Name: name}, ds)
	if apierrors.IsNotFound(err) {
		if cp.Status.Etcd == nil {
			return "", nil // it never got a part of it
		}
		return fmt.Sprintf("DataStore %s is gone, so the keys under %s and etcd user %s cannot be removed; "+
			"the platform team can restore the DataStore, or remove them by hand and then this ControlPlane's finalizer", name, cp.Status.Etcd.KeyPrefix, cp.Status.Etcd.User), nil
	}
	if err != nil {
		return "", fmt.Errorf("read DataStore %s: %w", name, err)
	}
	access, _, problem, err := dataStoreCredentials(ctx, r.APIReader, ds)
	if err != nil {
		return "", err
	}
	t := tenantOf(ds, cp)
	if problem != "" && cp.Status.Etcd == nil {
		return "", nil // no user was ever made: its credentials never worked
	}
	if problem != "" {
		return fmt.Sprintf("cannot remove the keys under %s and etcd user %s: %s; the platform team must fix DataStore %s", t.Prefix, t.User, problem, ds.Name), nil
	}
	if cp.Spec.DeletionPolicy == marinav1alpha1.DeletionPolicyDelete {
		n, err := access.root.Purge(ctx, t.Prefix)
		if err != nil {
			return fmt.Sprintf("cannot delete the keys under %s (deletionPolicy Delete) in DataStore %s: %v; fix it, or set deletionPolicy Retain to keep the keys", t.Prefix, ds.Name, err), nil
		}
		log.FromContext(ctx).Info("Deleted the control plane's keys in its DataStore", "dataStore", ds.Name, "prefix", t.Prefix, "keys", n)
	}
	if err := access.root.RemoveTenant(ctx, t); err != nil {
		return fmt.Sprintf("cannot remove etcd user %s from DataStore %s: %v", t.User, ds.Name, err), nil
	}
	r.tenantChecks.Delete(cp.UID)
	log.FromContext(ctx).Info("Removed the control plane's etcd user and role", "dataStore", ds.Name, "user", t.User)
	return "", nil
}
