package main

// The RBAC markers below are the single source of marina-sync's permissions.
// `make generate` runs controller-gen over this package into
// charts/marina/files/rbac/sync/role.yaml, and the chart's ClusterRole and
// leader-election Role take their rules from that file, so the installed
// permissions cannot drift from the code. A reconciler that needs a new verb
// adds a marker here (or next to itself, anywhere under operators/sync) and
// runs `make generate`.
//
// Markers without a namespace become the ClusterRole. The namespaced marker
// (namespace=marina-system) becomes the leader-election Role; the chart puts
// it into the release namespace whatever that is called.
//
// What sync applies lands in federation control planes and peer data
// centers, reached with their own credentials; in the management cluster it
// writes only its own API objects.

// Its own API: PolicySets and Peers, their status and finalizers that let
// pruning finish before an object goes.
// +kubebuilder:rbac:groups=marina.dev,resources=policysets;peers,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=marina.dev,resources=policysets/status;peers/status,verbs=get;patch
// +kubebuilder:rbac:groups=marina.dev,resources=policysets/finalizers;peers/finalizers,verbs=update

// Targets and what is replicated to peers: ControlPlanes are selected by
// label; RegistrationPolicies and MemberClusters are copied to peer data
// centers (through the peers' own credentials, not these).
// +kubebuilder:rbac:groups=marina.dev,resources=controlplanes;registrationpolicies;memberclusters,verbs=get;list;watch

// Sources and credentials, read-only: PolicySet ConfigMaps, control planes'
// sync kubeconfigs (the user marina:sync-operator, not the admin), Peers' kubeconfig Secrets and the member kubeconfigs
// replicated to peers.
// +kubebuilder:rbac:groups="",resources=configmaps;secrets,verbs=get;list;watch

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
