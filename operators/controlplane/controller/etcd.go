package controller

import (
	"context"
	"errors"
	"fmt"

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
	if ext := cp.Spec.Etcd.External; ext != nil {
		cluster, res, err := r.externalEtcd(ctx, s, cond)
		if err != nil || res.stop {
			return res, err
		}
		if err := cluster.Check(ctx); err != nil {
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
		s.blocked(cond, marinav1alpha1.ReasonRolloutInProgress, p)
		return waitForChange(), nil
	}
	s.done(cond, fmt.Sprintf("local etcd runs %d members", sts.Status.ReadyReplicas))
	return proceed, nil
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
