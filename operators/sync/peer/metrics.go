package peer

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics of the Peer reconciler, labelled by Peer name (a data center),
// never by what is replicated.
var (
	passSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "marina_sync_peer_pass_duration_seconds",
		Help:    "Time one pass over one Peer took: listing its replicas, applying what differs, pruning.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	})
	peerWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "marina_sync_peer_writes_total",
		Help: "Objects written to (applied or pruned in) a peer's management cluster.",
	}, []string{"peer"})
	peerReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "marina_sync_peer_ready",
		Help: "1 when the peer holds every replica from here, else 0.",
	}, []string{"peer"})
	peerReplicas = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "marina_sync_peer_replicated_objects",
		Help: "PolicySets, RegistrationPolicies and MemberClusters the peer holds as replicas from here.",
	}, []string{"peer"})
)

func init() {
	metrics.Registry.MustRegister(passSeconds, peerWrites, peerReady, peerReplicas)
}
