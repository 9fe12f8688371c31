// Package dispatch makes exactly one control plane dispatch workloads to
// each member cluster, however many control planes in however many data
// centers the member is joined to. Karmada's controllers take any object
// labelled karmada.io/managed as their own, so two engines that both
// dispatch to a member rewrite each other's copy of every workload many
// times a second. So one control plane holds the member's dispatch lease,
// a Lease in the member itself; every other control plane holds the same
// policies and the same join but keeps its propagation policies from
// dispatching to the member (their spec.suspension.dispatchingOnClusters,
// Karmada's own switch for this), and takes over when the lease lapses.
//
// The member is the arbiter because it is what the engines fight over: a
// data center that cannot reach the member cannot renew the lease, and
// could not dispatch to it anyway; two data centers that cannot reach each
// other but both reach the member still agree on one holder. The member's
// own data center is preferred: it asks for the lease back when it returns,
// and the holder hands it over once its own policies hold back.
package dispatch

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// LeaseName is the member's dispatch lease, in the namespace the
	// join's credentials live in (join.Namespace).
	LeaseName = "marina-dispatcher"
	// AnnotationRequestedBy on the lease names the preferred control
	// plane, which asks the holder to hand the lease over.
	AnnotationRequestedBy = "marina.dev/dispatch-requested-by"
)

// HolderID names a control plane as the lease's holder: readable, and the
// same whoever computes it.
func HolderID(dataCenter, namespace, name string) string {
	return dataCenter + "/" + namespace + "/" + name
}

// Claim is one control plane's claim on a member's lease.
type Claim struct {
	// Namespace in the member that holds the lease.
	Namespace string
	// ID is the control plane's HolderID.
	ID string
	// Preferred says this control plane should dispatch whenever it can:
	// the first control plane of the member's own data center.
	Preferred bool
	// Duration is how long a lease that is not renewed stays valid.
	Duration time.Duration
	// Labels are put on a lease this claim creates, so that the unjoin
	// knows it as Marina's.
	Labels map[string]string
}

// Outcome is where a claim left the lease.
type Outcome struct {
	// Holder is the lease's holder now; empty when unknown (another
	// control plane wrote it a moment before).
	Holder string
	// Mine says this control plane holds it.
	Mine bool
	// Took says this claim took the lease from Previous (expired, or
	// handed over).
	Took     bool
	Previous string
}

// Leases claims leases. A lease held by another control plane is taken
// only once it has not changed for its duration on this operator's own
// clock, not by comparing renewTime with it: data centers' clocks differ.
type Leases struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu   sync.Mutex
	seen map[string]observation
}

// observation is a lease's resourceVersion and when this operator first
// saw it.
type observation struct {
	rv string
	at time.Time
}

func (l *Leases) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// expired says whether lease, as read now, has gone unrenewed for its
// duration. key names the member.
func (l *Leases) expired(key string, lease *coordinationv1.Lease, fallback time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]observation{}
	}
	now := l.now()
	o, ok := l.seen[key]
	if !ok || o.rv != lease.ResourceVersion {
		o = observation{rv: lease.ResourceVersion, at: now}
		l.seen[key] = o
	}
	d := fallback
	if s := ptr.Deref(lease.Spec.LeaseDurationSeconds, 0); s > 0 {
		d = time.Duration(s) * time.Second
	}
	return now.Sub(o.at) >= d
}

// Forget drops what was observed of a member's lease.
func (l *Leases) Forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.seen, key)
}

// Claim renews, takes, asks for or hands over the lease of the member that
// key names, through member. beforeHandover runs before this control plane
// hands the lease to the preferred one: it must make this control plane
// hold back first, so that the two never dispatch at once; if it fails,
// the lease is kept.
func (l *Leases) Claim(ctx context.Context, member client.Client, key string, c Claim, beforeHandover func(context.Context) error) (Outcome, error) {
	lease := &coordinationv1.Lease{}
	err := member.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: LeaseName}, lease)
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: LeaseName, Labels: c.Labels}}
		l.hold(lease, c, true)
		if err := member.Create(ctx, lease); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return Outcome{}, nil // another control plane was first
			}
			return Outcome{}, fmt.Errorf("create Lease %s/%s in the member: %w", c.Namespace, LeaseName, err)
		}
		return Outcome{Holder: c.ID, Mine: true, Took: true}, nil
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("read Lease %s/%s in the member: %w", c.Namespace, LeaseName, err)
	}
	holder := ptr.Deref(lease.Spec.HolderIdentity, "")
	requested := lease.Annotations[AnnotationRequestedBy]
	update := func(out Outcome) (Outcome, error) {
		if err := member.Update(ctx, lease); err != nil {
			if apierrors.IsConflict(err) {
				return Outcome{}, nil // written meanwhile: look again next pass
			}
			return Outcome{}, fmt.Errorf("update Lease %s/%s in the member: %w", c.Namespace, LeaseName, err)
		}
		return out, nil
	}
	switch {
	case holder == c.ID && requested != "" && requested != c.ID && !c.Preferred:
		// The preferred control plane is back and asks for the lease.
		if err := beforeHandover(ctx); err != nil {
			l.hold(lease, c, false)
			if _, uerr := update(Outcome{}); uerr != nil {
				return Outcome{}, uerr
			}
			return Outcome{Holder: c.ID, Mine: true}, fmt.Errorf("keeping the dispatch lease that %s asks for: %w", requested, err)
		}
		lease.Spec.HolderIdentity = ptr.To(requested)
		now := metav1.NewMicroTime(l.now())
		lease.Spec.AcquireTime, lease.Spec.RenewTime = &now, &now
		lease.Spec.LeaseTransitions = ptr.To(ptr.Deref(lease.Spec.LeaseTransitions, 0) + 1)
		delete(lease.Annotations, AnnotationRequestedBy)
		return update(Outcome{Holder: requested})
	case holder == c.ID:
		l.hold(lease, c, false)
		if requested == c.ID {
			delete(lease.Annotations, AnnotationRequestedBy)
		}
		return update(Outcome{Holder: c.ID, Mine: true})
	case holder == "" || l.expired(key, lease, c.Duration):
		l.hold(lease, c, true)
		if requested == c.ID {
			delete(lease.Annotations, AnnotationRequestedBy)
		}
		return update(Outcome{Holder: c.ID, Mine: true, Took: true, Previous: holder})
	case c.Preferred && requested != c.ID:
		if lease.Annotations == nil {
			lease.Annotations = map[string]string{}
		}
		lease.Annotations[AnnotationRequestedBy] = c.ID
		return update(Outcome{Holder: holder})
	default:
		return Outcome{Holder: holder}, nil
	}
}

// hold makes lease this claim's, renewed now; take counts a new holder.
func (l *Leases) hold(lease *coordinationv1.Lease, c Claim, take bool) {
	now := metav1.NewMicroTime(l.now())
	lease.Spec.HolderIdentity = ptr.To(c.ID)
	lease.Spec.LeaseDurationSeconds = ptr.To(int32(c.Duration / time.Second))
	lease.Spec.RenewTime = &now
	if take {
		lease.Spec.AcquireTime = &now
		if lease.ResourceVersion != "" {
			lease.Spec.LeaseTransitions = ptr.To(ptr.Deref(lease.Spec.LeaseTransitions, 0) + 1)
		}
	}
}

// Release deletes the member's lease when this control plane holds it, or
// nobody holds it any more (its holder left without releasing it): an
// unjoin leaves no lease behind, and the next control plane takes a new
// one at once instead of waiting for this one to lapse.
func (l *Leases) Release(ctx context.Context, member client.Client, key string, c Claim) error {
	lease := &coordinationv1.Lease{}
	err := member.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: LeaseName}, lease)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read Lease %s/%s in the member: %w", c.Namespace, LeaseName, err)
	}
	holder := ptr.Deref(lease.Spec.HolderIdentity, "")
	if holder != c.ID && holder != "" && !l.expired(key, lease, c.Duration) {
		return nil
	}
	err = member.Delete(ctx, lease, client.Preconditions{ResourceVersion: ptr.To(lease.ResourceVersion)})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete Lease %s/%s in the member: %w", c.Namespace, LeaseName, err)
	}
	return nil
}
