package localenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// MetricsReader reads the operators' metrics in one management cluster as
// a Prometheus would: they serve them only to callers the API server
// authorizes for GET /metrics, so it holds a token of a ServiceAccount
// bound to the chart's metrics-reader ClusterRole. Pods are reachable from
// the host through the environment's routes.
type MetricsReader struct {
	c       client.Client
	binding string
	token   string
}

// metricsHTTP talks to the operators' metrics servers, whose certificate
// is self-signed (the chart's default): the readers check nothing of it,
// they only read figures over the encrypted connection.
var metricsHTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed, see above
}}

// NewMetricsReader makes ServiceAccount metrics-reader in ns (it goes with
// the namespace) and ClusterRoleBinding binding, which Close removes.
func NewMetricsReader(ctx context.Context, c client.Client, ns, binding string) (*MetricsReader, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "metrics-reader"}}
	if err := c.Create(ctx, sa); client.IgnoreAlreadyExists(err) != nil {
		return nil, err
	}
	r := &MetricsReader{c: c, binding: binding}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: binding},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: MarinaRelease + "-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa.Name}},
	}
	if err := c.Create(ctx, crb); client.IgnoreAlreadyExists(err) != nil {
		return nil, err
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	if err := c.SubResource("token").Create(ctx, sa, tr); err != nil {
		return r, fmt.Errorf("request a token of %s/%s: %w", ns, sa.Name, err)
	}
	r.token = tr.Status.Token
	return r, nil
}

// Close removes the reader's ClusterRoleBinding.
func (r *MetricsReader) Close(ctx context.Context) error {
	err := r.c.Delete(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: r.binding}})
	return client.IgnoreNotFound(err)
}

// Scrape reads the metrics of a ready pod of operator (such as
// marina-controlplane), in Prometheus' text format.
func (r *MetricsReader) Scrape(ctx context.Context, operator string) ([]byte, error) {
	pods := &corev1.PodList{}
	if err := r.c.List(ctx, pods, client.InNamespace(MarinaNamespace), client.MatchingLabels{"app.kubernetes.io/name": operator}); err != nil {
		return nil, err
	}
	for _, p := range pods.Items {
		if p.Status.PodIP == "" || p.DeletionTimestamp != nil || !podReady(&p) {
			continue
		}
		url := "https://" + p.Status.PodIP + ":8443/metrics"
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+r.token)
		resp, err := metricsHTTP.Do(req)
		if err != nil {
			return nil, fmt.Errorf("scrape %s's metrics: %w", operator, err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("scrape %s's metrics at %s: %w", operator, url, err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("scrape %s's metrics at %s: %s: %s", operator, url, resp.Status, body)
		}
		return body, nil
	}
	return nil, fmt.Errorf("no ready %s pod in %s", operator, MarinaNamespace)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
