// Package etcdcluster runs a multi-member etcd cluster with mutual TLS on
// clients and peers: the external etcd that several federation control
// planes share, each under its own key prefix.
package etcdcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/marina-platform/marina/internal/localenv/pki"
	"github.com/marina-platform/marina/internal/localenv/proc"
)

// Cluster is an etcd cluster whose members run in one network namespace on
// different ports.
type Cluster struct {
	// Name prefixes the members' names (<name>-0, <name>-1 …).
	Name  string
	NetNS string
	IP    net.IP
	// Members is the number of members, 3 for a cluster that survives the
	// loss of one.
	Members int
	// BasePort is member 0's client port; member i serves clients on
	// BasePort+100*i and peers on the port after that.
	BasePort int
	Dir      string
	// Etcd is the etcd binary.
	Etcd string
	// Auth turns etcd's authentication on, as a DataStore needs: the
	// client certificate is then the root user's (common name root), and
	// etcd compacts its history itself, since no tenant may.
	Auth bool
}

// RootUser is the common name of the client certificate with Auth.
const RootUser = "root"

func (c Cluster) clientName() string {
	if c.Auth {
		return RootUser
	}
	return "marina-control-planes"
}

// ClientCAFiles are the certificate and key of the CA etcd trusts for
// clients: a DataStore's spec.clientCASecretRef.
func (c Cluster) ClientCAFiles() (cert, key string) {
	return filepath.Join(c.pkiDir(), "ca.crt"), filepath.Join(c.pkiDir(), "ca.key")
}

func (c Cluster) member(i int) string  { return fmt.Sprintf("%s-%d", c.Name, i) }
func (c Cluster) clientPort(i int) int { return c.BasePort + 100*i }
func (c Cluster) pkiDir() string       { return filepath.Join(c.Dir, "pki") }

// Endpoint is member i's client URL.
func (c Cluster) Endpoint(i int) string {
	return "https://" + net.JoinHostPort(c.IP.String(), strconv.Itoa(c.clientPort(i)))
}

// Endpoints are every member's client URL.
func (c Cluster) Endpoints() []string {
	var eps []string
	for i := 0; i < c.Members; i++ {
		eps = append(eps, c.Endpoint(i))
	}
	return eps
}

func (c Cluster) peerURL(i int) string {
	return "https://" + net.JoinHostPort(c.IP.String(), strconv.Itoa(c.clientPort(i)+1))
}

// ClientFiles are the CA, client certificate and key a control plane uses,
// the keys of a ControlPlane's spec.etcd.external.tlsSecretRef Secret.
func (c Cluster) ClientFiles() (ca, cert, key string) {
	p := c.pkiDir()
	return filepath.Join(p, "ca.crt"), filepath.Join(p, "client.crt"), filepath.Join(p, "client.key")
}

// Processes are the members, as proc specs.
func (c Cluster) Processes() []proc.Spec {
	var initial []string
	for i := 0; i < c.Members; i++ {
		initial = append(initial, c.member(i)+"="+c.peerURL(i))
	}
	p := c.pkiDir()
	var specs []proc.Spec
	for i := 0; i < c.Members; i++ {
		m := c.member(i)
		specs = append(specs, proc.Spec{
			Name: m, Path: c.Etcd, NetNS: c.NetNS, Dir: c.Dir,
			Args: []string{
				"--name=" + m,
				"--data-dir=" + filepath.Join(c.Dir, m+"-data"),
				"--listen-client-urls=" + c.Endpoint(i),
				"--advertise-client-urls=" + c.Endpoint(i),
				"--listen-peer-urls=" + c.peerURL(i),
				"--initial-advertise-peer-urls=" + c.peerURL(i),
				"--initial-cluster=" + strings.Join(initial, ","),
				"--initial-cluster-token=" + c.Name,
				"--client-cert-auth", "--trusted-ca-file=" + filepath.Join(p, "ca.crt"),
				"--cert-file=" + filepath.Join(p, m+".crt"), "--key-file=" + filepath.Join(p, m+".key"),
				"--peer-client-cert-auth", "--peer-trusted-ca-file=" + filepath.Join(p, "ca.crt"),
				"--peer-cert-file=" + filepath.Join(p, m+".crt"), "--peer-key-file=" + filepath.Join(p, m+".key"),
				"--unsafe-no-fsync",
				"--log-level=warn",
			},
		})
		if c.Auth {
			specs[i].Args = append(specs[i].Args, "--auto-compaction-mode=periodic", "--auto-compaction-retention=5m")
		}
	}
	return specs
}

// WriteConfig creates the CA, a certificate per member (server and peer)
// and the client certificate; existing files are kept.
func (c Cluster) WriteConfig() error {
	ca, err := pki.LoadOrCreateCA(c.pkiDir(), c.Name+"-ca")
	if err != nil {
		return err
	}
	for i := 0; i < c.Members; i++ {
		m := c.member(i)
		if _, err := os.Stat(filepath.Join(c.pkiDir(), m+".crt")); err == nil {
			continue
		}
		kp, err := ca.Issue(pki.Request{CommonName: m, DNSNames: []string{m}, IPs: []net.IP{c.IP}, Server: true, Client: true})
		if err != nil {
			return err
		}
		if err := kp.Write(c.pkiDir(), m); err != nil {
			return err
		}
	}
	if cn, err := commonName(filepath.Join(c.pkiDir(), "client.crt")); err == nil && cn == c.clientName() {
		return nil
	}
	kp, err := ca.Issue(pki.Request{CommonName: c.clientName(), Client: true})
	if err != nil {
		return err
	}
	return kp.Write(c.pkiDir(), "client")
}

// Start starts every member that does not run and waits until all are
// healthy.
func (c Cluster) Start(ctx context.Context) error {
	if err := c.WriteConfig(); err != nil {
		return err
	}
	for _, s := range c.Processes() {
		if _, err := proc.Start(s); err != nil {
			return err
		}
	}
	if err := c.waitStarted(ctx); err != nil {
		return err
	}
	if c.Auth {
		return c.enableAuth(ctx)
	}
	return nil
}

// enableAuth makes the root user (no password: it authenticates by its
// certificate) and turns authentication on, unless it is on already.
func (c Cluster) enableAuth(ctx context.Context) error {
	cli, err := c.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	st, err := cli.AuthStatus(ctx)
	if err != nil {
		return fmt.Errorf("etcd cluster %s: authentication status: %w", c.Name, err)
	}
	if st.Enabled {
		return nil
	}
	if _, err := cli.UserAddWithOptions(ctx, RootUser, "", &clientv3.UserAddOptions{NoPassword: true}); err != nil && !errors.Is(err, rpctypes.ErrUserAlreadyExist) {
		return fmt.Errorf("etcd cluster %s: add user root: %w", c.Name, err)
	}
	if _, err := cli.UserGrantRole(ctx, RootUser, "root"); err != nil {
		return fmt.Errorf("etcd cluster %s: grant root the root role: %w", c.Name, err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		return fmt.Errorf("etcd cluster %s: enable authentication: %w", c.Name, err)
	}
	return nil
}

// commonName reads the common name of a PEM certificate file.
func commonName(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return "", fmt.Errorf("%s holds no PEM certificate", file)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", err
	}
	return cert.Subject.CommonName, nil
}

// waitStarted waits until every member is healthy. A member that exits
// (a port taken, a bad certificate) will not come back, so it ends the wait
// at once with the end of its log.
func (c Cluster) waitStarted(ctx context.Context) error { return c.wait(ctx, c.Members, true) }

// Stop stops every member; data stays.
func (c Cluster) Stop() error {
	var errs []error
	for _, s := range c.Processes() {
		errs = append(errs, proc.Stop(s, 10*time.Second))
	}
	return errors.Join(errs...)
}

// TLSConfig is a client TLS configuration with the client certificate.
func (c Cluster) TLSConfig() (*tls.Config, error) {
	caFile, certFile, keyFile := c.ClientFiles()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// Client connects to every member.
func (c Cluster) Client() (*clientv3.Client, error) {
	tlsCfg, err := c.TLSConfig()
	if err != nil {
		return nil, err
	}
	// Failures come back as errors; the client's own retry logs are noise.
	return clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), TLS: tlsCfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
}

// WaitHealthy waits until at least want members answer a status request.
// Members may be stopped on purpose meanwhile (a fault test).
func (c Cluster) WaitHealthy(ctx context.Context, want int) error { return c.wait(ctx, want, false) }

// wait waits until at least want members are healthy; with exitEnds, a
// member whose process exited ends it with the end of its log.
func (c Cluster) wait(ctx context.Context, want int, exitEnds bool) error {
	cli, err := c.Client()
	if err != nil {
		return err
	}
	defer cli.Close()
	for {
		healthy, lastErr := c.healthy(ctx, cli)
		if healthy >= want {
			return nil
		}
		for _, s := range c.Processes() {
			if !exitEnds {
				break
			}
			if _, ok := proc.Running(s); !ok {
				return fmt.Errorf("etcd cluster %s: member %s exited; its log (%s) ends with:\n%s", c.Name, s.Name, s.LogFile(), proc.LogTail(s, 10))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd cluster %s: %d of %d members healthy: %v (logs in %s)", c.Name, healthy, want, lastErr, c.Dir)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// Healthy reports how many members answer.
func (c Cluster) Healthy(ctx context.Context) (int, error) {
	cli, err := c.Client()
	if err != nil {
		return 0, err
	}
	defer cli.Close()
	return c.healthy(ctx, cli)
}

func (c Cluster) healthy(ctx context.Context, cli *clientv3.Client) (int, error) {
	n := 0
	var lastErr error
	for _, ep := range c.Endpoints() {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := cli.Status(sctx, ep)
		cancel()
		if err != nil {
			lastErr = fmt.Errorf("%s: %w", ep, err)
			continue
		}
		if st.Leader != 0 {
			n++
		}
	}
	return n, lastErr
}
