package controller

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

const (
	// migrationPage is how many objects one reconciliation rewrites, so
	// that progress shows in the status and other control planes get
	// their turn.
	migrationPage = 200
	// keyAdoptionGrace is how long after a rotation the operator waits
	// before rewriting: every API server asks its KMS plugin for the key ID
	// once a minute while healthy, and a rewrite through one that still
	// uses the old key would be wasted.
	keyAdoptionGrace = 70 * time.Second
	// statusKeyMetric is the API server's record of the key IDs its KMS
	// plugin reported (hashed: sha256:<hex>).
	statusKeyMetric = "apiserver_envelope_encryption_key_id_hash_status_last_timestamp_seconds"
)

// reconcileMigration rewrites every object of the encrypted resources once
// the API servers encrypt with the current transit key, so that all of them
// are encrypted with it (a storage migration, as kube-storage-version-
// migrator does it: a read and an unchanged write, which the API server
// stores again because the value read is stale). It also encrypts what was
// stored before encryption was turned on. It goes a page per
// reconciliation and keeps its place in the status.
func (r *Reconciler) reconcileMigration(ctx context.Context, s *scope) (result, error) {
	const cond = marinav1alpha1.ConditionEncryptionReady
	cp := s.cp
	enc, es := cp.Spec.Encryption, cp.Status.Encryption
	if enc == nil || es == nil || es.KeyID == "" || s.degraded {
		return proceed, nil
	}
	if es.Migration == nil {
		if es.MigratedKeyID == es.KeyID && slices.Equal(es.MigratedResources, enc.Resources) {
			return proceed, nil
		}
		es.Migration = &marinav1alpha1.StorageMigration{KeyID: es.KeyID, StartTime: ptrNow()}
	}
	m := es.Migration
	if m.KeyID != es.KeyID || (m.Resource != "" && !slices.Contains(enc.Resources, m.Resource)) {
		// Rotated again, or the resources changed, on the way: start over.
		*m = marinav1alpha1.StorageMigration{KeyID: es.KeyID, StartTime: ptrNow()}
	}

	if m.Resource == "" {
		inUse, err := apiServerReportsKey(ctx, s.fedREST, m.KeyID)
		if err != nil {
			return proceed, err
		}
		rotated := es.MigratedKeyID != "" && es.MigratedKeyID != m.KeyID
		if !inUse || (rotated && time.Since(m.StartTime.Time) < keyAdoptionGrace) {
			s.set(cond, metav1.ConditionFalse, marinav1alpha1.ReasonKeyRotationInProgress, fmt.Sprintf(
				"waiting for the API servers to encrypt with transit key %s (they ask the KMS plugin once a minute) before rewriting %s",
				m.KeyID, strings.Join(enc.Resources, ", ")))
			s.requeue(5 * time.Second)
			return proceed, nil
		}
		m.Resource = enc.Resources[0]
	}

	n, next, err := r.rewritePage(ctx, s, m.Resource, m.Continue)
	m.Rewritten += n
	if apierrors.IsResourceExpired(err) {
		// The list's snapshot was compacted away: list this resource
		// again; rewriting an object twice does no harm.
		m.Continue = ""
		s.requeue(time.Second)
		return proceed, nil
	}
	if err != nil {
		return proceed, fmt.Errorf("rewrite %s: %w", m.Resource, err)
	}
	m.Continue = next
	if next == "" {
		if i := slices.Index(enc.Resources, m.Resource); i+1 < len(enc.Resources) {
			m.Resource = enc.Resources[i+1]
		} else {
			es.MigratedKeyID, es.MigratedResources, es.Migration = m.KeyID, slices.Clone(enc.Resources), nil
			msg := fmt.Sprintf("%s encrypted with Vault transit key %s; the storage migration rewrote %d objects",
				strings.Join(enc.Resources, ", "), m.KeyID, m.Rewritten)
			s.done(cond, msg)
			if r.Recorder != nil {
				r.Recorder.Eventf(cp, nil, corev1.EventTypeNormal, "StorageMigrated", "Migrate", "%s", msg)
			}
			log.FromContext(ctx).Info("Storage migration done", "keyID", m.KeyID, "resources", enc.Resources, "rewritten", m.Rewritten)
			return proceed, nil
		}
	}
	s.set(cond, metav1.ConditionFalse, marinav1alpha1.ReasonKeyRotationInProgress, fmt.Sprintf(
		"rewriting %s with transit key %s: %d objects so far, now %s", strings.Join(enc.Resources, ", "), m.KeyID, m.Rewritten, m.Resource))
	s.requeue(100 * time.Millisecond)
	return proceed, nil
}

// rewritePage reads one page of a resource (resource or resource.group) and
// writes every object back unchanged. Objects changed or deleted meanwhile
// need no rewrite: whoever changed them wrote them with the current key.
func (r *Reconciler) rewritePage(ctx context.Context, s *scope, resource, cont string) (int64, string, error) {
	res, group, _ := strings.Cut(resource, ".")
	gvk, err := s.fed.RESTMapper().KindFor(schema.GroupVersionResource{Group: group, Resource: res})
	if meta.IsNoMatchError(err) {
		// Not served (yet): nothing of it is stored.
		return 0, "", nil
	}
	if err != nil {
		return 0, "", err
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err := s.fed.List(ctx, list, &client.ListOptions{Limit: migrationPage, Continue: cont}); err != nil {
		return 0, "", err
	}
	var n int64
	for i := range list.Items {
		err := s.fed.Update(ctx, &list.Items[i])
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return n, "", fmt.Errorf("%s %s/%s: %w", gvk.Kind, list.Items[i].GetNamespace(), list.Items[i].GetName(), err)
		}
		n++
	}
	return n, list.GetContinue(), nil
}

// apiServerReportsKey says whether the API server answering has heard keyID
// from its KMS plugin, from its envelope encryption metrics.
func apiServerReportsKey(ctx context.Context, rc rest.Interface, keyID string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body, err := rc.Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return false, fmt.Errorf("read the API server's metrics: %w", err)
	}
	return reportsKey(body, keyID), nil
}

// reportsKey finds keyID's hash, as the API server labels it, in the
// status metric of a Prometheus text exposition.
func reportsKey(metrics []byte, keyID string) bool {
	label := fmt.Sprintf(`key_id_hash="sha256:%x"`, sha256.Sum256([]byte(keyID)))
	sc := bufio.NewScanner(bytes.NewReader(metrics))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, statusKeyMetric+"{") && strings.Contains(line, label) {
			return true
		}
	}
	return false
}

func ptrNow() *metav1.Time {
	t := metav1.Now()
	return &t
}
