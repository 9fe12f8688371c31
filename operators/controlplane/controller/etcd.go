package controller

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/operators/controlplane/externaletcd"
)

// reconcileEtcd runs the local etcd StatefulSet and waits for its members,
// or checks that the external cluster answers with the control plane's
// client certificate.
func (r *Reconciler) reconcileEtcd(ctx context.Context, s *scope) (result, error) {
	const cond = marinav1alpha1.ConditionEtcdReady
	cp := s.cp
	// The NetworkPolicies go first, so that no pod of the control plane,
	// etcd's least of all, is ever reachable from another tenant's.
	if err := r.applyKind(ctx, s, "NetworkPolicy"); err != nil {
		return proceed, err
	}
	if s.dataStore != nil {
		return r.reconcileDataStoreEtcd(ctx, s)
	}
	if ext := cp.Spec.Etcd.External; ext != nil {
		cluster, res, err := r.externalEtcd(ctx, s, cond)
		if err != nil || res.stop {
			return res, err
		}
		if err := r.checkEtcd(ctx, cp, cluster); err != nil {
			if isInvalidTLS(err) {
				s.blocked(cond, marinav1alpha1.ReasonInvalidSecret, fmt.Sprintf(
					"Secret %s/%s named in spec.etcd.external.tlsSecretRef: %v", cp.Namespace, ext.TLSSecretRef.Name, err))
				return retryAfter(r.RetryAfter), nil
			}
			s.blocked(cond, marinav1alpha1.ReasonEtcdUnreachable, fmt.Sprintf(
				"external etcd (spec.etcd.external.endpoints) does not answer with the certificate of Secret %s: %v",
				ext.TLSSecretRef.Name, err))
			return retryAfter(r.RetryAfter), nil
		}
		s.done(cond, fmt.Sprintf("external etcd answers; keys under %s", ext.KeyPrefix))
		return proceed, nil
	}

	if err := r.applyParts(ctx, s, "etcd"); err != nil {
		return proceed, err
	}
	sts := &appsv1.StatefulSet{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: cp.Namespace, Name: cp.Name + "-etcd"}, sts)
	if apierrors.IsNotFound(err) {
		s.blocked(cond, marinav1alpha1.ReasonProgressing, "waiting for StatefulSet "+cp.Name+"-etcd")
		return waitForChange(), nil
	}
	if err != nil {
		return proceed, err
	}
	p := statefulSetProblem(sts)
	if s.stale("StatefulSet", sts) {
		p = sts.Name + ": the change is not picked up yet"
	}
	if p != "" {
		reason := marinav1alpha1.ReasonRolloutInProgress
		if sts.Spec.Selector != nil {
			if why := r.podsStuck(ctx, sts.Namespace, sts.Spec.Selector.MatchLabels); why != "" {
				p, reason = sts.Name+": "+why, marinav1alpha1.ReasonRolloutStuck
			}
		}
		s.blocked(cond, reason, p)
		return retryAfter(rolloutRecheck), nil
	}
	s.done(cond, fmt.Sprintf("local etcd runs %d members", sts.Status.ReadyReplicas))
	return proceed, nil
}

// etcdCheckValid is how long a successful check of an external etcd with
// the same endpoints and credentials stands: within it a pass dials no
// etcd. An etcd lost meanwhile shows sooner anyway, in the API server's
// /readyz, which APIServerReady probes on every pass.
const etcdCheckValid = 5 * time.Minute

// etcdCheck is the last successful check of a control plane's external
// etcd: of what (a hash of endpoints and credentials) and when.
type etcdCheck struct {
	key [32]byte
	at  time.Time
}

// checkEtcd checks that the external etcd answers, unless it did with the
// same endpoints and credentials less than etcdCheckValid ago.
func (r *Reconciler) checkEtcd(ctx context.Context, cp *marinav1alpha1.ControlPlane, c externaletcd.Cluster) error {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(strings.Join(c.Endpoints, ",")), c.CA, c.Cert, c.Key} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	var key [32]byte
	copy(key[:], h.Sum(nil))
	if v, ok := r.etcdChecks.Load(cp.UID); ok && v.(etcdCheck).key == key && time.Since(v.(etcdCheck).at) < etcdCheckValid {
		return nil
	}
	if err := c.Check(ctx); err != nil {
		r.etcdChecks.Delete(cp.UID)
		return err
	}
	r.etcdChecks.Store(cp.UID, etcdCheck{key: key, at: time.Now()})
	return nil
}

// externalEtcd reads the TLS Secret of spec.etcd.external. A problem with it
// is reported on condition cond.
func (r *Reconciler) externalEtcd(ctx context.Context, s *scope, cond string) (externaletcd.Cluster, result, error) {
	ext := s.cp.Spec.Etcd.External
	data, reason, problem, err := r.secretData(ctx, s.cp.Namespace, ext.TLSSecretRef.Name, "spec.etcd.external.tlsSecretRef",
		"ca.crt", corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	if err != nil {
		return externaletcd.Cluster{}, proceed, err
	}
	if problem != "" {
		s.blocked(cond, reason, problem)
		return externaletcd.Cluster{}, retryAfter(r.RetryAfter), nil
	}
	cluster := externaletcd.Cluster{
		Endpoints: ext.Endpoints, CA: data["ca.crt"], Cert: data[corev1.TLSCertKey], Key: data[corev1.TLSPrivateKeyKey],
	}
	return cluster, proceed, nil
}

// isInvalidTLS tells a broken Secret from an unreachable cluster.
func isInvalidTLS(err error) bool { return errors.Is(err, externaletcd.ErrInvalidTLS) }
