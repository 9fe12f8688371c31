package controller

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
)

const (
	// migrationPage is how many objects one list of a migration returns.
	migrationPage = 200
	// migrationReport is how often a running migration wakes its control
	// plane to write its progress into the status.
	migrationReport = 2 * time.Second
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
// stored before encryption was turned on. The rewrites run in the
// background (migrations); each pass keeps their place in the status, from
// where they go on after an operator restart.
func (r *Reconciler) reconcileMigration(ctx context.Context, s *scope) (result, error) {
	const cond = marinav1alpha1.ConditionEncryptionReady
	cp := s.cp
	enc, es := cp.Spec.Encryption, cp.Status.Encryption
	if enc == nil || es == nil || es.KeyID == "" || s.degraded {
		// Without Vault every rewrite would fail; it goes on from its
		// place once encryption is healthy again.
		r.migrations.stop(cp.UID)
		return proceed, nil
	}
	if es.Migration == nil && es.MigratedKeyID == es.KeyID && sameSet(es.MigratedResources, enc.Resources) {
		return proceed, nil
	}
	// Progress goes into the status: a status written from a cache that
	// lags behind the last page must fail, not rewind the migration.
	s.optimisticStatus = true
	m := es.Migration
	if m == nil || m.KeyID != es.KeyID || !slices.Equal(m.Resources, enc.Resources) {
		// New, or rotated again or the resources changed on the way:
		// start (over).
		m = &marinav1alpha1.StorageMigration{KeyID: es.KeyID, Resources: slices.Clone(enc.Resources), StartTime: ptr.To(metav1.Now())}
		es.Migration = m
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
				m.KeyID, strings.Join(m.Resources, ", ")))
			s.requeue(5 * time.Second)
			return proceed, nil
		}
		m.Resource = m.Resources[0]
	}

	// The rewrites run on their own goroutine, so that no worker waits on
	// thousands of writes; each pass reports how far they are, and the
	// run wakes the control plane as it goes.
	run := r.migrations.start(cp, m, s.fed, r.wake)
	done, err := run.copyTo(m)
	if err != nil {
		r.migrations.stop(cp.UID)
		// The next pass goes on from the place the status keeps.
		return proceed, fmt.Errorf("rewrite %s: %w", m.Resource, err)
	}
	if done {
		r.migrations.stop(cp.UID)
		r.migrationDone(ctx, s)
		return proceed, nil
	}
	msg := fmt.Sprintf("rewriting %s with transit key %s: %d objects so far, now %s",
		strings.Join(m.Resources, ", "), m.KeyID, m.Rewritten, m.Resource)
	if m.Failed > 0 {
		msg += fmt.Sprintf("; %d refused, the last: %s", m.Failed, m.LastFailure)
	}
	s.set(cond, metav1.ConditionFalse, marinav1alpha1.ReasonKeyRotationInProgress, msg)
	return proceed, nil
}

func (r *Reconciler) migrationDone(ctx context.Context, s *scope) {
	const cond = marinav1alpha1.ConditionEncryptionReady
	cp, es := s.cp, s.cp.Status.Encryption
	m := es.Migration
	es.MigratedKeyID, es.MigratedResources, es.Migration = m.KeyID, m.Resources, nil
	msg := fmt.Sprintf("%s encrypted with Vault transit key %s; the storage migration rewrote %d objects",
		strings.Join(m.Resources, ", "), m.KeyID, m.Rewritten)
	eventType := corev1.EventTypeNormal
	if m.Failed > 0 {
		// Done as far as it can go: rewriting them again would be refused
		// again. They move to the new key when next written.
		msg += fmt.Sprintf("; %d objects were refused and keep an older key until they are written (the last: %s)", m.Failed, m.LastFailure)
		eventType = corev1.EventTypeWarning
	}
	s.done(cond, msg)
	if r.Recorder != nil {
		r.Recorder.Eventf(cp, nil, eventType, "StorageMigrated", "Migrate", "%s", msg)
	}
	log.FromContext(ctx).Info("Storage migration done", "keyID", m.KeyID, "resources", m.Resources, "rewritten", m.Rewritten, "failed", m.Failed)
}

// pageResult is what one page of a migration did.
type pageResult struct {
	rewritten, failed int64
	lastFailure       string
	next              string // the list's continue token; "" after the last page
}

// rewritePage reads one page of a resource (resource or resource.group) and
// writes every object back unchanged. Objects changed or deleted meanwhile
// need no rewrite: whoever changed them wrote them with the current key.
// An object the API server refuses to write is counted and skipped.
func rewritePage(ctx context.Context, fed client.Client, resource, cont string) (pageResult, error) {
	var res pageResult
	name, group, _ := strings.Cut(resource, ".")
	gvk, err := fed.RESTMapper().KindFor(schema.GroupVersionResource{Group: group, Resource: name})
	if meta.IsNoMatchError(err) {
		// Not served (yet): nothing of it is stored.
		return res, nil
	}
	if err != nil {
		return res, err
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	err = fed.List(ctx, list, &client.ListOptions{Limit: migrationPage, Continue: cont})
	if apierrors.IsResourceExpired(err) {
		// The list's snapshot was compacted away. The API server offers a
		// token that goes on from the same place without the snapshot:
		// objects written meanwhile were written with the current key.
		var status apierrors.APIStatus
		if errors.As(err, &status) && status.Status().ListMeta.Continue != "" {
			cont = status.Status().ListMeta.Continue
			err = fed.List(ctx, list, &client.ListOptions{Limit: migrationPage, Continue: cont})
		}
	}
	if err != nil {
		return res, err
	}
	for i := range list.Items {
		obj := &list.Items[i]
		err := fed.Update(ctx, obj)
		switch {
		case err == nil:
			res.rewritten++
		case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		case apierrors.IsInvalid(err), apierrors.IsForbidden(err), apierrors.IsBadRequest(err):
			res.failed++
			res.lastFailure = fmt.Sprintf("%s %s/%s: %v", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
		default:
			return res, fmt.Errorf("%s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
		}
	}
	res.next = list.GetContinue()
	return res, nil
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

// migrations are the storage migrations running, one per control plane at
// most.
type migrations struct {
	mu   sync.Mutex
	runs map[types.UID]*migrationRun
}

// migrationRun rewrites one control plane's encrypted resources, page
// after page, on its own goroutine.
type migrationRun struct {
	keyID     string
	resources []string
	cancel    context.CancelFunc

	mu       sync.Mutex
	progress marinav1alpha1.StorageMigration
	done     bool
	err      error
}

// start returns the control plane's run for m's key and resources,
// starting it from m's place when none runs (or one for another key or
// other resources, which it stops).
func (ms *migrations) start(cp *marinav1alpha1.ControlPlane, m *marinav1alpha1.StorageMigration, fed client.Client, wake func(types.NamespacedName)) *migrationRun {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.runs == nil {
		ms.runs = map[types.UID]*migrationRun{}
	}
	if run, ok := ms.runs[cp.UID]; ok {
		if run.keyID == m.KeyID && slices.Equal(run.resources, m.Resources) {
			return run
		}
		run.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &migrationRun{keyID: m.KeyID, resources: slices.Clone(m.Resources), cancel: cancel, progress: *m.DeepCopy()}
	ms.runs[cp.UID] = run
	key := client.ObjectKeyFromObject(cp) // not cp itself: the pass goes on writing it
	go run.rewrite(ctx, fed, func() { wake(key) })
	return run
}

// stop ends a control plane's run, if any.
func (ms *migrations) stop(uid types.UID) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if run, ok := ms.runs[uid]; ok {
		run.cancel()
		delete(ms.runs, uid)
	}
}

// rewrite goes through every page of every resource from the run's place,
// waking the control plane every migrationReport and when it ends.
func (run *migrationRun) rewrite(ctx context.Context, fed client.Client, wake func()) {
	defer wake()
	last := time.Now()
	for {
		run.mu.Lock()
		resource, cont := run.progress.Resource, run.progress.Continue
		run.mu.Unlock()
		page, err := rewritePage(ctx, fed, resource, cont)
		if ctx.Err() != nil {
			return
		}
		run.mu.Lock()
		p := &run.progress
		p.Rewritten += page.rewritten
		p.Failed += page.failed
		if page.lastFailure != "" {
			p.LastFailure = page.lastFailure
		}
		if err != nil {
			run.err = err
			run.mu.Unlock()
			return
		}
		p.Continue = page.next
		if p.Continue == "" {
			i := slices.Index(p.Resources, p.Resource)
			if i+1 >= len(p.Resources) {
				run.done = true
				run.mu.Unlock()
				return
			}
			p.Resource = p.Resources[i+1]
		}
		run.mu.Unlock()
		if time.Since(last) >= migrationReport {
			wake()
			last = time.Now()
		}
	}
}

// copyTo writes the run's progress into m and says whether it is done.
func (run *migrationRun) copyTo(m *marinav1alpha1.StorageMigration) (done bool, err error) {
	run.mu.Lock()
	defer run.mu.Unlock()
	p := run.progress
	m.Resource, m.Continue, m.Rewritten, m.Failed, m.LastFailure = p.Resource, p.Continue, p.Rewritten, p.Failed, p.LastFailure
	return run.done, run.err
}
