package main

// The RBAC markers below are the single source of marina-register's
// permissions. `make generate` runs controller-gen over this package into
// charts/marina/files/rbac/register/role.yaml, and the chart's ClusterRole
// and leader-election Role take their rules from that file, so the installed
// permissions cannot drift from the code. A reconciler that needs a new verb
// adds a marker here (or next to itself, anywhere under operators/register)
// and runs `make generate`.
//
// Markers without a namespace become the ClusterRole. The namespaced marker
// (namespace=marina-system) becomes the leader-election Role; the chart puts
// it into the release namespace whatever that is called.
//
// Everything register creates for a join lives in the member cluster and the
// federation control plane, reached with their own credentials; in the
// management cluster it manages only its own API objects.

// Its own API: MemberClusters (created from Cluster API Clusters and
// labelled kubeconfig Secrets, so create and delete too) and
// RegistrationPolicies (only read: a person writes them), their status and
// the finalizer that guards a clean unjoin. Every write is a patch, so no
// update but on finalizers, which Kubernetes checks for an owner reference
// that blocks its owner's deletion (a MemberCluster's on its policy).
// +kubebuilder:rbac:groups=marina.dev,resources=memberclusters,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=marina.dev,resources=registrationpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=marina.dev,resources=memberclusters/status;registrationpolicies/status,verbs=get;patch
// +kubebuilder:rbac:groups=marina.dev,resources=memberclusters/finalizers;registrationpolicies/finalizers,verbs=update

// The control planes a member joins, selected by label; their admin
// kubeconfig Secrets are read below.
// +kubebuilder:rbac:groups=marina.dev,resources=controlplanes,verbs=get;list;watch

// Sources: Cluster API Clusters (read-only: the gate is their status) and
// kubeconfig Secrets (members' and control planes' admin credentials).
// +kubebuilder:rbac:groups=cluster.x-k8s.io,resources=clusters,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

// Events on the objects it reconciles, through both event APIs
// controller-runtime's recorders use.
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Metrics are served only to callers the API server authenticates and
// authorizes (internal/operator, --metrics-secure): a TokenReview and a
// SubjectAccessReview per caller, cached.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// Leader election, in the operator's own namespace.
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=marina-system,resources=leases,verbs=get;list;watch;create;update;patch;delete
