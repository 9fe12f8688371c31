package main

// The RBAC markers below are the single source of marina-controlplane's
// permissions. `make generate` runs controller-gen over this package into
// charts/marina/files/rbac/controlplane/role.yaml, and the chart's ClusterRole
// and leader-election Role take their rules from that file, so the installed
// permissions cannot drift from the code. A reconciler that needs a new verb
// adds a marker here (or next to itself, anywhere under operators/controlplane)
// and runs `make generate`.
//
// Markers without a namespace become the ClusterRole. The namespaced marker
// (namespace=marina-system) becomes the leader-election Role; the chart puts
// it into the release namespace whatever that is called.
//
// Roles and RoleBindings the operator creates for the components it deploys
// can only grant what the operator holds itself: Kubernetes refuses RBAC
// escalation, and the operator deliberately has neither `escalate` nor `bind`.

// Its own API: ControlPlanes, their status and the finalizer that guards
// clean deletion.
// Writes are patches (the finalizer with an optimistic lock, the status with
// a merge patch), so neither needs update.
// +kubebuilder:rbac:groups=marina.dev,resources=controlplanes,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=marina.dev,resources=controlplanes/status,verbs=get;patch
// +kubebuilder:rbac:groups=marina.dev,resources=controlplanes/finalizers,verbs=update

// DataStores: the shared etcd clusters control planes keep their data in.
// The operator reads them, reports their health and use in status, and holds
// each with a finalizer while a ControlPlane uses it.
// +kubebuilder:rbac:groups=marina.dev,resources=datastores,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=marina.dev,resources=datastores/status,verbs=get;patch
// +kubebuilder:rbac:groups=marina.dev,resources=datastores/finalizers,verbs=update

// What a control plane is made of: certificates' Secrets, the admin and
// encryption Secrets, Services, the KMS plugin's identity, workloads,
// their disruption budgets and NetworkPolicies, all applied with server-side apply (a patch:
// create for the first apply, never update) and removed on deletion. The
// chart's ValidatingAdmissionPolicy marina-controlplane-operator-scope
// narrows these writes to objects labelled as Marina's, outside the
// cluster's own namespaces (see charts/marina/templates/admissionpolicy.yaml).
// +kubebuilder:rbac:groups="",resources=secrets;services;serviceaccounts,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;patch;delete

// A rollout that does not finish is explained by its pods: a container
// waiting on an image pull or in a crash loop becomes RolloutStuck with
// that reason. Pods are only read, and only while a rollout is pending.
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list

// With Vault's Kubernetes auth method the operator checks the settings by
// logging in as the KMS plugin will: with a short-lived token of the
// plugin's service account. The chart's admission policy allows it only for
// the <control plane>-kms-vault service accounts Marina makes.
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create

// Certificates through cert-manager: Certificates and namespaced Issuers
// (a bring-your-own CA becomes a CA Issuer). ClusterIssuers are only read,
// to report one that is missing or not ready.
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates;issuers,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=cert-manager.io,resources=clusterissuers,verbs=get;list;watch

// spec.priorityClassName must name an existing PriorityClass; the operator
// checks, it never creates them (the chart does).
// +kubebuilder:rbac:groups=scheduling.k8s.io,resources=priorityclasses,verbs=get;list;watch

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
