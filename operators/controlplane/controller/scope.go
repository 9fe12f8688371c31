package controller

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	marinav1alpha1 "github.com/marina-platform/marina/api/v1alpha1"
	"github.com/marina-platform/marina/operators/controlplane/render"
)

// stages are the ControlPlane's conditions in the order the stages run.
var stages = []string{
	marinav1alpha1.ConditionCertificatesReady,
	marinav1alpha1.ConditionEtcdReady,
	marinav1alpha1.ConditionEncryptionReady,
	marinav1alpha1.ConditionAPIServerReady,
	marinav1alpha1.ConditionCRDsReady,
	marinav1alpha1.ConditionComponentsReady,
}

// scope is what one reconciliation of one ControlPlane learns as it goes.
type scope struct {
	cp     *marinav1alpha1.ControlPlane
	before *marinav1alpha1.ControlPlane

	// dataStore is the DataStore the spec names, if any; set by the data
	// store stage, before anything is rendered.
	dataStore *marinav1alpha1.DataStore
	// issuer signs every certificate; set by the certificates stage.
	issuer render.IssuerValues
	// objects are the rendered chart.
	objects []*unstructured.Unstructured
	// secrets are the control plane's own Secrets (certificates and
	// kubeconfigs) by name, as the cache holds them.
	secrets map[string]*corev1.Secret
	// applied holds the generation the API server gave each object this
	// reconciliation applied, by "Kind/name": the cache may still hold the
	// previous one, whose status describes the old spec.
	applied map[string]int64
	// fed reaches the control plane's API server once it answers.
	fed     client.Client
	fedREST rest.Interface

	// degraded: Vault is unreachable with settings that worked; the API
	// servers keep running on cached data keys.
	degraded bool
	// held are the objects (Kind/name) this pass must not apply: a
	// rollout waiting for encryption to be healthy (holdAPIServerRollout).
	held map[string]bool
	// foreign is set for a ControlPlane of another data center: it gets
	// no metrics here.
	foreign bool
	// optimisticStatus makes the status patch fail on a newer status
	// (migration progress must not be rewound by a stale cache).
	optimisticStatus bool
	// requeueAfter asks for another look even when every stage is done,
	// such as polling Vault for a key rotation; the shortest wins.
	requeueAfter time.Duration
}

// requeue asks for another reconciliation within d.
func (s *scope) requeue(d time.Duration) {
	if d > 0 && (s.requeueAfter == 0 || d < s.requeueAfter) {
		s.requeueAfter = d
	}
}

func newScope(cp *marinav1alpha1.ControlPlane) *scope {
	return &scope{cp: cp, before: cp.DeepCopy(), applied: map[string]int64{}}
}

// stale says whether the cached obj is older than what this reconciliation
// applied.
func (s *scope) stale(kind string, obj interface {
	GetName() string
	GetGeneration() int64
}) bool {
	return obj.GetGeneration() < s.applied[kind+"/"+obj.GetName()]
}

// result is what a stage tells the sequence: go on, or stop here and look
// again after a while (zero: when something watched changes).
type result struct {
	stop  bool
	after time.Duration
}

var proceed = result{}

func waitForChange() result             { return result{stop: true} }
func retryAfter(d time.Duration) result { return result{stop: true, after: d} }

// set records a condition, keeping its transition time when the status is
// unchanged.
func (s *scope) set(typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&s.cp.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: s.cp.Generation,
	})
}

func (s *scope) done(typ, msg string) {
	s.set(typ, metav1.ConditionTrue, marinav1alpha1.ReasonSucceeded, msg)
}

// blocked marks stage typ False and every later stage that has never
// succeeded as waiting for it. Later stages that succeeded before keep their
// condition: what runs keeps running while an earlier stage is redone.
func (s *scope) blocked(typ, reason, msg string) {
	s.set(typ, metav1.ConditionFalse, reason, msg)
	after := false
	for _, st := range stages {
		if st == typ {
			after = true
			continue
		}
		if !after {
			continue
		}
		if c := meta.FindStatusCondition(s.cp.Status.Conditions, st); c == nil || c.Status != metav1.ConditionTrue {
			s.set(st, metav1.ConditionFalse, marinav1alpha1.ReasonWaitingForDependency, "waits for "+typ)
		}
	}
	s.notReady(reason, typ+": "+msg)
}

func (s *scope) notReady(reason, msg string) {
	s.set(marinav1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
}

// isProblem says whether a reason asks a person to act (a Warning Event)
// rather than report progress.
func isProblem(reason string) bool {
	switch reason {
	case marinav1alpha1.ReasonSucceeded, marinav1alpha1.ReasonProgressing, marinav1alpha1.ReasonRolloutInProgress,
		marinav1alpha1.ReasonWaitingForDependency, marinav1alpha1.ReasonDisabled, marinav1alpha1.ReasonDeleting,
		marinav1alpha1.ReasonSuspended, marinav1alpha1.ReasonCertificateNotReady, marinav1alpha1.ReasonKeyRotationInProgress:
		return false
	}
	return true
}
