// Package externaletcd talks to an etcd cluster that Marina does not run:
// it checks that the cluster answers with the control plane's client
// certificate, and removes a control plane's keys when it is deleted with
// deletionPolicy Delete.
package externaletcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Cluster is how to reach an external etcd cluster.
type Cluster struct {
	// Endpoints are the members' https URLs.
	Endpoints []string
	// CA, Cert and Key are PEM data from the control plane's TLS Secret
	// (ca.crt, tls.crt, tls.key).
	CA, Cert, Key []byte
	// Timeout bounds each operation; 5 s when zero.
	Timeout time.Duration
}

// ErrInvalidTLS: the Secret's certificate, key or CA cannot be used.
var ErrInvalidTLS = errors.New("invalid TLS data")

func (c Cluster) client() (*clientv3.Client, error) {
	cert, err := tls.X509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: tls.crt and tls.key: %v", ErrInvalidTLS, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.CA) {
		return nil, fmt.Errorf("%w: ca.crt holds no PEM certificate", ErrInvalidTLS)
	}
	return clientv3.New(clientv3.Config{
		Endpoints:   c.Endpoints,
		DialTimeout: c.timeout(),
		TLS:         &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12},
		// The client logs every failed dial at warning level; the caller
		// reports the outcome in a condition instead.
		Logger: zap.NewNop(),
	})
}

func (c Cluster) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 5 * time.Second
}

// Check returns nil when at least one member answers a status request. Its
// error names every member that did not, and why.
func (c Cluster) Check(ctx context.Context) error {
	cli, err := c.client()
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()
	var failures []string
	for _, ep := range c.Endpoints {
		sctx, cancel := context.WithTimeout(ctx, c.timeout())
		_, err := cli.Status(sctx, ep)
		cancel()
		if err == nil {
			return nil
		}
		failures = append(failures, fmt.Sprintf("%s: %v", ep, err))
	}
	return fmt.Errorf("no etcd member answered: %s", strings.Join(failures, "; "))
}

// Purge deletes every key under prefix and returns how many there were.
// The prefix is taken as a folder: /marina/a never removes /marina/ab.
func (c Cluster) Purge(ctx context.Context, prefix string) (int64, error) {
	if prefix == "" || prefix == "/" {
		return 0, errors.New("refusing to purge the whole keyspace")
	}
	cli, err := c.client()
	if err != nil {
		return 0, err
	}
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 4*c.timeout())
	defer cancel()
	resp, err := cli.Delete(ctx, strings.TrimSuffix(prefix, "/")+"/", clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("delete keys under %s: %w", prefix, err)
	}
	return resp.Deleted, nil
}

// Count returns how many keys are stored under prefix (as a folder).
func (c Cluster) Count(ctx context.Context, prefix string) (int64, error) {
	cli, err := c.client()
	if err != nil {
		return 0, err
	}
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	resp, err := cli.Get(ctx, strings.TrimSuffix(prefix, "/")+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("count keys under %s: %w", prefix, err)
	}
	return resp.Count, nil
}
