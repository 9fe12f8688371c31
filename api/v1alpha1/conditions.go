package v1alpha1

// Condition types. Every kind reports a summary Ready; the other types name
// one stage or aspect so that a person sees where things stand.
const (
	// ConditionReady summarises all other conditions of an object.
	ConditionReady = "Ready"

	// ControlPlane stages, in the order the controlplane operator runs them.
	ConditionCertificatesReady = "CertificatesReady"
	ConditionEtcdReady         = "EtcdReady"
	ConditionEncryptionReady   = "EncryptionReady"
	ConditionAPIServerReady    = "APIServerReady"
	ConditionCRDsReady         = "CRDsReady"
	ConditionComponentsReady   = "ComponentsReady"

	// ConditionReachable says whether Marina reaches a member cluster's or a
	// peer's API server.
	ConditionReachable = "Reachable"
	// ConditionJoined says whether a member is joined to a control plane.
	ConditionJoined = "Joined"
	// ConditionDispatching says whether a control plane dispatches
	// workloads to a member: exactly one of the control planes the member
	// is joined to, in every data center, does (the holder of the
	// member's dispatch lease); the others hold back (see
	// README.md, "One dispatcher per member").
	ConditionDispatching = "Dispatching"

	// PolicySet and Peer.
	ConditionSourcesReady = "SourcesReady"
	ConditionApplied      = "Applied"
	ConditionDrifted      = "Drifted"
	ConditionSynced       = "Synced"
)

// Condition reasons. They are CamelCase words a person can act on; the
// condition's message carries the details (names, URLs, errors).
const (
	// ReasonSucceeded: the stage is done.
	ReasonSucceeded = "Succeeded"
	// ReasonProgressing: the stage is under way and will be checked again.
	ReasonProgressing = "Progressing"
	// ReasonStageFailed: a stage failed on an error the operator retries
	// with backoff (an API request refused, a timeout); the message says
	// which stage and what failed.
	ReasonStageFailed = "StageFailed"
	// ReasonSuspended: spec.suspend is true; nothing is reconciled.
	ReasonSuspended = "Suspended"
	// ReasonDeleting: the object is being deleted.
	ReasonDeleting = "Deleting"
	// ReasonDisabled: the stage is not configured or switched off.
	ReasonDisabled = "Disabled"
	// ReasonWaitingForDependency: an earlier stage is not ready yet.
	ReasonWaitingForDependency = "WaitingForDependency"
	// ReasonDegraded: the stage works with reduced guarantees, such as cached
	// keys while Vault is unreachable.
	ReasonDegraded = "Degraded"

	// ReasonSecretNotFound: a referenced Secret does not exist.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonInvalidSecret: a referenced Secret lacks a key or holds bad data.
	ReasonInvalidSecret = "InvalidSecret"
	// ReasonIssuerNotReady: the cert-manager issuer is missing or not ready.
	ReasonIssuerNotReady = "IssuerNotReady"
	// ReasonCertificateNotReady: cert-manager has not issued a certificate.
	ReasonCertificateNotReady = "CertificateNotReady"
	// ReasonEtcdUnreachable: no etcd endpoint answered.
	ReasonEtcdUnreachable = "EtcdUnreachable"
	// ReasonVaultUnreachable: the Vault server did not answer.
	ReasonVaultUnreachable = "VaultUnreachable"
	// ReasonVaultAuthFailed: Vault refused the configured credentials.
	ReasonVaultAuthFailed = "VaultAuthFailed"
	// ReasonTransitKeyNotFound: the transit key does not exist.
	ReasonTransitKeyNotFound = "TransitKeyNotFound"
	// ReasonKeyRotationInProgress: resources are being rewritten to a new key.
	ReasonKeyRotationInProgress = "KeyRotationInProgress"
	// ReasonPriorityClassNotFound: a referenced PriorityClass does not exist.
	ReasonPriorityClassNotFound = "PriorityClassNotFound"
	// ReasonURLNotAllowed: a URL in the spec names a host the platform team
	// does not let the operator reach.
	ReasonURLNotAllowed = "URLNotAllowed"
	// ReasonInsecureURL: a URL that would carry secrets is plain http.
	ReasonInsecureURL = "InsecureURL"
	// ReasonDownloadFailed: a URL could not be fetched.
	ReasonDownloadFailed = "DownloadFailed"
	// ReasonChecksumMismatch: a download's SHA-256 differs from the spec.
	ReasonChecksumMismatch = "ChecksumMismatch"
	// ReasonInvalidContent: a document could not be parsed or applied.
	ReasonInvalidContent = "InvalidContent"
	// ReasonAPIServerUnavailable: the federation API server does not answer.
	ReasonAPIServerUnavailable = "APIServerUnavailable"
	// ReasonAPIServiceUnavailable: an APIService Marina registered in the
	// federation API server is not Available (the aggregator cannot reach
	// or trust the server behind it).
	ReasonAPIServiceUnavailable = "APIServiceUnavailable"
	// ReasonConflict: an object Marina must own exists and someone else
	// made it; Marina leaves it alone until a person removes it.
	ReasonConflict = "Conflict"
	// ReasonWebhookUnavailable: the federation API server cannot call the
	// engine's admission webhook.
	ReasonWebhookUnavailable = "WebhookUnavailable"
	// ReasonRolloutStuck: a component's pods missed their Deployment's
	// progress deadline (a missing image, a crash loop, a failing probe).
	ReasonRolloutStuck = "RolloutStuck"
	// ReasonRolloutInProgress: pods of a component are being replaced.
	ReasonRolloutInProgress = "RolloutInProgress"
	// ReasonDataCenterMismatch: the object names another data center than
	// the operator that sees it serves.
	ReasonDataCenterMismatch = "DataCenterMismatch"
	// ReasonEncryptionUnsupported: spec.encryption asks for what this
	// operator version cannot run; the control plane is not started
	// unencrypted.
	ReasonEncryptionUnsupported = "EncryptionUnsupported"
	// ReasonDataStoreNotFound: the DataStore a ControlPlane names does not
	// exist.
	ReasonDataStoreNotFound = "DataStoreNotFound"
	// ReasonDataStoreNotReady: the DataStore's credentials or etcd do not
	// work, or it is being deleted; the platform team fixes it.
	ReasonDataStoreNotReady = "DataStoreNotReady"
	// ReasonEtcdAuthDisabled: a DataStore's etcd runs without
	// authentication, so no role would isolate its control planes.
	ReasonEtcdAuthDisabled = "EtcdAuthDisabled"
	// ReasonInUse: the object cannot go while others use it.
	ReasonInUse = "InUse"

	// ReasonClusterUnreachable: a member or peer API server did not answer.
	ReasonClusterUnreachable = "ClusterUnreachable"
	// ReasonDispatcher: this control plane holds the member's dispatch
	// lease and dispatches workloads to it.
	ReasonDispatcher = "Dispatcher"
	// ReasonStandby: another control plane holds the member's dispatch
	// lease; this one holds the same policies and join, and takes over
	// when that lease lapses.
	ReasonStandby = "Standby"
	// ReasonSuspendFailed: a standby control plane's propagation policies
	// could not be made to hold back dispatching to the member.
	ReasonSuspendFailed = "SuspendFailed"
	// ReasonWaitingForClusterAPI: the Cluster API Cluster is not initialized
	// or its kubeconfig Secret does not exist yet.
	ReasonWaitingForClusterAPI = "WaitingForClusterAPI"
	// ReasonPaused: the Cluster API Cluster is paused.
	ReasonPaused = "Paused"
	// ReasonControlPlaneNotFound: a referenced ControlPlane does not exist.
	ReasonControlPlaneNotFound = "ControlPlaneNotFound"
	// ReasonControlPlaneNotReady: a referenced ControlPlane is not Ready.
	ReasonControlPlaneNotReady = "ControlPlaneNotReady"
	// ReasonJoinFailed: creating the member's objects failed.
	ReasonJoinFailed = "JoinFailed"
	// ReasonAwaitingApproval: a Manual RegistrationPolicy waits for a person.
	ReasonAwaitingApproval = "AwaitingApproval"

	// ReasonSourceUnavailable: a PolicySet source could not be read.
	ReasonSourceUnavailable = "SourceUnavailable"
	// ReasonDriftDetected: applied objects were changed by someone else.
	ReasonDriftDetected = "DriftDetected"
	// ReasonDriftCorrected: changed objects were restored.
	ReasonDriftCorrected = "DriftCorrected"
	// ReasonApplyFailed: applying objects to a target failed.
	ReasonApplyFailed = "ApplyFailed"
	// ReasonPeerUnreachable: a peer data center's management cluster did
	// not answer or refused the credentials; retried with backoff.
	ReasonPeerUnreachable = "PeerUnreachable"
	// ReasonKindNotServed: a target does not serve an object's kind (yet):
	// its CRD is missing, or comes later; retried.
	ReasonKindNotServed = "KindNotServed"
	// ReasonNotPermitted: the sync operator's user may not write an
	// object's kind in a target; an administrator there grants it.
	ReasonNotPermitted = "NotPermitted"
)

// Labels and annotations Marina puts on what it creates, so that deletion
// and unjoin remove exactly those objects.
const (
	// LabelManagedBy marks every object Marina creates.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "marina"
	// LabelControlPlane names the ControlPlane an object belongs to.
	LabelControlPlane = "marina.dev/control-plane"
	// LabelMemberCluster names the MemberCluster an object belongs to.
	LabelMemberCluster = "marina.dev/member-cluster"
	// LabelPolicySet names the PolicySet an object was applied from, and
	// LabelPolicySetNamespace its namespace.
	LabelPolicySet          = "marina.dev/policy-set"
	LabelPolicySetNamespace = "marina.dev/policy-set-namespace"
	// LabelOriginDataCenter names the data center a replicated object comes
	// from; that data center is authoritative for it.
	LabelOriginDataCenter = "marina.dev/origin-data-center"
	// LabelDataCenter is the data center of a ControlPlane, for selectors.
	LabelDataCenter = "marina.dev/data-center"
	// AnnotationOrigin says, on a replica, what its original is and where
	// it lives, such as "PolicySet platform/baseline in data center dc1":
	// the place to change it.
	AnnotationOrigin = "marina.dev/origin"
	// AnnotationApprovedInOrigin, on a replica of a MemberCluster that a
	// Manual RegistrationPolicy made, says a person approved it in its
	// origin (named control planes there): the replica then joins the
	// control planes the replicated policy selects here.
	AnnotationApprovedInOrigin = "marina.dev/approved-in-origin"
)
