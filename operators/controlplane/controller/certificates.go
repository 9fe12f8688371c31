package controller

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/operators/controlplane/render"
)

var (
	certificateGVK   = schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Certificate"}
	issuerGVK        = schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Issuer"}
	clusterIssuerGVK = schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "ClusterIssuer"}
)

// reconcileCertificates settles who signs, renders the chart and has
// cert-manager issue every certificate. Later stages need the Secrets, so
// it waits until all are issued.
func (r *Reconciler) reconcileCertificates(ctx context.Context, s *scope) (result, error) {
	const cond = marinav1alpha1.ConditionCertificatesReady
	cp := s.cp
	if res, err := r.reconcileIssuer(ctx, s); err != nil || res.stop {
		return res, err
	}
	if err := r.render(ctx, s); err != nil {
		s.blocked(cond, marinav1alpha1.ReasonInvalidContent, err.Error())
		return waitForChange(), nil
	}

	// The control plane's own CA Issuers first: its CA Certificates and the
	// certificates they sign name them.
	for _, obj := range s.objects {
		if obj.GroupVersionKind() != issuerGVK {
			continue
		}
		if err := r.apply(ctx, cp, obj); err != nil {
			return proceed, err
		}
		s.applied[obj.GetKind()+"/"+obj.GetName()] = obj.GetGeneration()
	}

	var pending []string
	total := 0
	for _, obj := range s.objects {
		if obj.GroupVersionKind() != certificateGVK {
			continue
		}
		total++
		if err := r.apply(ctx, cp, obj); err != nil {
			return proceed, err
		}
		s.applied[obj.GetKind()+"/"+obj.GetName()] = obj.GetGeneration()
		if msg := r.certificateProblem(ctx, s, obj); msg != "" {
			pending = append(pending, msg)
		}
	}
	if len(pending) > 0 {
		slices.Sort(pending)
		s.blocked(cond, marinav1alpha1.ReasonCertificateNotReady, fmt.Sprintf(
			"cert-manager has issued %d of %d certificates; waiting for %s", total-len(pending), total, strings.Join(pending, "; ")))
		return waitForChange(), nil
	}
	if err := r.reconcileClientCA(ctx, s); err != nil {
		return proceed, err
	}
	s.done(cond, fmt.Sprintf("%d certificates issued by %s %s and the control plane's own CAs", total, s.issuer.Kind, s.issuer.Name))
	return proceed, nil
}

// ClientCASecretName is the Secret holding the CAs the federation API
// server trusts for client certificates.
func ClientCASecretName(cp *marinav1alpha1.ControlPlane) string { return cp.Name + "-client-ca" }

// reconcileClientCA writes the bundle of CAs the federation API server
// trusts for client certificates (--client-ca-file): the user's issuer's
// (the CA of its own serving certificate, as before) and the CSR signer's,
// so that certificates kube-controller-manager signs for pull-mode agents
// authenticate. kube-apiserver reloads the file, so a change rolls no pod.
func (r *Reconciler) reconcileClientCA(ctx context.Context, s *scope) error {
	cp := s.cp
	var bundle []byte
	for _, src := range []struct{ secret, key string }{
		{cp.Name + "-apiserver-tls", "ca.crt"},
		{cp.Name + "-signer-ca-tls", corev1.TLSCertKey},
	} {
		sec, ok := s.secrets[src.secret]
		if !ok || len(sec.Data[src.key]) == 0 {
			return fmt.Errorf("client CA bundle: Secret %s has no %s", src.secret, src.key)
		}
		bundle = append(bundle, bytes.TrimSpace(sec.Data[src.key])...)
		bundle = append(bundle, '\n')
	}
	name := ClientCASecretName(cp)
	if have, ok := s.secrets[name]; ok && bytes.Equal(have.Data["ca.crt"], bundle) {
		return nil
	}
	return r.applySecret(ctx, cp, name, "apiserver", map[string][]byte{"ca.crt": bundle})
}

// certificateProblem returns "" when cert-manager has issued the current
// spec of a Certificate and its Secret exists, else what it waits for.
func (r *Reconciler) certificateProblem(ctx context.Context, s *scope, want *unstructured.Unstructured) string {
	got := newUnstructured(certificateGVK)
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(want), got); err != nil {
		return want.GetName() + " (not in the cache yet)"
	}
	if s.stale("Certificate", got) {
		return want.GetName() + " (the change is not in the cache yet)"
	}
	ready := readyCondition(got)
	if ready == nil {
		return want.GetName() + " (no status yet: is cert-manager running?)"
	}
	if ready.status != "True" || ready.observedGeneration < got.GetGeneration() {
		return fmt.Sprintf("%s (%s: %s)", want.GetName(), ready.reason, ready.message)
	}
	secretName, _, _ := unstructured.NestedString(want.Object, "spec", "secretName")
	if _, ok := s.secrets[secretName]; !ok {
		return fmt.Sprintf("%s (Secret %s not seen yet)", want.GetName(), secretName)
	}
	return ""
}

// reconcileIssuer applies the CA Issuer made from spec.certificates.
// caSecretRef, or checks the issuer of spec.certificates.issuerRef, and
// waits until it is ready.
func (r *Reconciler) reconcileIssuer(ctx context.Context, s *scope) (result, error) {
	const cond = marinav1alpha1.ConditionCertificatesReady
	cp := s.cp
	spec := cp.Spec.Certificates

	if ref := spec.CASecretRef; ref != nil {
		data, reason, problem, err := r.secretData(ctx, cp.Namespace, ref.Name, "spec.certificates.caSecretRef", corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
		if err != nil {
			return proceed, err
		}
		if problem == "" {
			problem = caProblem(data[corev1.TLSCertKey])
			reason = marinav1alpha1.ReasonInvalidSecret
			if problem != "" {
				problem = fmt.Sprintf("Secret %s/%s named in spec.certificates.caSecretRef: %s", cp.Namespace, ref.Name, problem)
			}
		}
		if problem != "" {
			s.blocked(cond, reason, problem)
			return retryAfter(r.RetryAfter), nil
		}
		issuer := newUnstructured(issuerGVK)
		issuer.SetNamespace(cp.Namespace)
		issuer.SetName(cp.Name + "-ca")
		issuer.SetLabels(ownLabels(cp, "ca"))
		if err := unstructured.SetNestedField(issuer.Object, ref.Name, "spec", "ca", "secretName"); err != nil {
			return proceed, err
		}
		if err := r.apply(ctx, cp, issuer); err != nil {
			return proceed, err
		}
		s.issuer = render.IssuerValues{Name: issuer.GetName(), Kind: "Issuer", Group: "cert-manager.io"}
		return r.issuerReady(ctx, s, issuer.GetName(), issuerGVK, cp.Namespace, false)
	}

	ref := spec.IssuerRef
	kind, group := ref.Kind, ref.Group
	if kind == "" {
		kind = "Issuer"
	}
	if group == "" {
		group = "cert-manager.io"
	}
	s.issuer = render.IssuerValues{Name: ref.Name, Kind: kind, Group: group}
	if group != "cert-manager.io" {
		// An external issuer's readiness is its own business.
		return proceed, nil
	}
	gvk, ns := issuerGVK, cp.Namespace
	if kind == "ClusterIssuer" {
		gvk, ns = clusterIssuerGVK, ""
	}
	return r.issuerReady(ctx, s, ref.Name, gvk, ns, true)
}

// issuerReady checks an issuer's Ready condition. Issuers the operator did
// not make are read directly and polled; its own Issuer is watched.
func (r *Reconciler) issuerReady(ctx context.Context, s *scope, name string, gvk schema.GroupVersionKind, ns string, foreign bool) (result, error) {
	const cond = marinav1alpha1.ConditionCertificatesReady
	var reader client.Reader = r.Client
	wait := waitForChange()
	if foreign {
		reader, wait = r.APIReader, retryAfter(r.RetryAfter)
	}
	issuer := newUnstructured(gvk)
	err := reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, issuer)
	where := gvk.Kind + " " + name
	if ns != "" {
		where = fmt.Sprintf("%s %s/%s", gvk.Kind, ns, name)
	}
	switch {
	case apierrors.IsNotFound(err):
		s.blocked(cond, marinav1alpha1.ReasonIssuerNotReady, where+" named in spec.certificates.issuerRef does not exist; create it or name an existing issuer")
		return wait, nil
	case err != nil:
		return proceed, fmt.Errorf("read %s: %w", where, err)
	}
	if c := readyCondition(issuer); c == nil || c.status != "True" {
		msg := where + " is not ready yet"
		if c != nil && c.message != "" {
			msg = fmt.Sprintf("%s is not ready: %s", where, c.message)
		}
		s.blocked(cond, marinav1alpha1.ReasonIssuerNotReady, msg)
		return wait, nil
	}
	return proceed, nil
}

// caProblem checks that a PEM certificate can sign others.
func caProblem(certPEM []byte) string {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return "tls.crt holds no PEM certificate"
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "tls.crt: " + err.Error()
	}
	if !cert.IsCA {
		return fmt.Sprintf("tls.crt (%s) is not a CA certificate: basic constraints CA:TRUE are needed to sign the control plane's certificates", cert.Subject)
	}
	return ""
}

type condition struct {
	status, reason, message string
	observedGeneration      int64
}

// readyCondition reads the Ready condition of a cert-manager object.
func readyCondition(u *unstructured.Unstructured) *condition {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != "Ready" {
			continue
		}
		out := &condition{}
		out.status, _ = m["status"].(string)
		out.reason, _ = m["reason"].(string)
		out.message, _ = m["message"].(string)
		if g, ok := m["observedGeneration"].(int64); ok {
			out.observedGeneration = g
		}
		return out
	}
	return nil
}
