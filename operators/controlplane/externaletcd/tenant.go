package externaletcd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrAuthDisabled: the cluster's authentication is off, so every client
// may read and write every key and no role isolates anything.
var ErrAuthDisabled = errors.New("etcd authentication is off")

// A Tenant is one control plane's part of a shared cluster: a user of the
// same name as its role, whose one permission is read and write on the keys
// under Prefix.
type Tenant struct {
	User   string
	Prefix string
}

// folder is the prefix as etcd sees it: with its slash, so that the role of
// /marina/a covers no key of /marina/ab.
func (t Tenant) folder() string { return strings.TrimSuffix(t.Prefix, "/") + "/" }

// CheckAuth returns ErrAuthDisabled when the cluster does not check
// credentials. c must hold the root user's certificate.
func (c Cluster) CheckAuth(ctx context.Context) error {
	return c.with(ctx, c.timeout(), checkAuth)
}

// with runs f with a client of the cluster and a deadline d away.
func (c Cluster) with(ctx context.Context, d time.Duration, f func(context.Context, *clientv3.Client) error) error {
	cli, err := c.client()
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return f(ctx, cli)
}

// EnsureTenant makes the tenant's role, with read and write on its prefix
// and nothing else, and its user, with no password (it authenticates by its
// certificate's common name) and that role. Each step accepts what exists,
// so a pass cut short is finished by the next. c must hold the root user's
// certificate.
func (c Cluster) EnsureTenant(ctx context.Context, t Tenant) error {
	if t.User == "" || t.User == "root" || t.Prefix == "" || t.Prefix == "/" {
		return fmt.Errorf("refusing tenant %q on prefix %q", t.User, t.Prefix)
	}
	return c.with(ctx, 4*c.timeout(), func(ctx context.Context, cli *clientv3.Client) error { return ensureTenant(ctx, cli, t) })
}

func ensureTenant(ctx context.Context, cli *clientv3.Client, t Tenant) error {
	if err := checkAuth(ctx, cli); err != nil {
		return err
	}
	if _, err := cli.RoleAdd(ctx, t.User); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
		return fmt.Errorf("add role %s: %w", t.User, err)
	}
	key := t.folder()
	if _, err := cli.RoleGrantPermission(ctx, t.User, key, clientv3.GetPrefixRangeEnd(key), clientv3.PermissionType(clientv3.PermReadWrite)); err != nil {
		return fmt.Errorf("grant role %s read and write under %s: %w", t.User, key, err)
	}
	if _, err := cli.UserAddWithOptions(ctx, t.User, "", &clientv3.UserAddOptions{NoPassword: true}); err != nil && !errors.Is(err, rpctypes.ErrUserAlreadyExist) {
		return fmt.Errorf("add user %s: %w", t.User, err)
	}
	if _, err := cli.UserGrantRole(ctx, t.User, t.User); err != nil {
		return fmt.Errorf("grant user %s role %s: %w", t.User, t.User, err)
	}
	return nil
}

func checkAuth(ctx context.Context, cli *clientv3.Client) error {
	resp, err := cli.AuthStatus(ctx)
	if err != nil {
		return fmt.Errorf("authentication status: %w", err)
	}
	if !resp.Enabled {
		return ErrAuthDisabled
	}
	return nil
}

// RemoveTenant deletes the tenant's user and role; either may be gone
// already. Its keys stay: Purge deletes them.
func (c Cluster) RemoveTenant(ctx context.Context, t Tenant) error {
	return c.with(ctx, 4*c.timeout(), func(ctx context.Context, cli *clientv3.Client) error { return removeTenant(ctx, cli, t) })
}

func removeTenant(ctx context.Context, cli *clientv3.Client, t Tenant) error {
	if _, err := cli.UserDelete(ctx, t.User); err != nil && !errors.Is(err, rpctypes.ErrUserNotFound) {
		return fmt.Errorf("delete user %s: %w", t.User, err)
	}
	if _, err := cli.RoleDelete(ctx, t.User); err != nil && !errors.Is(err, rpctypes.ErrRoleNotFound) {
		return fmt.Errorf("delete role %s: %w", t.User, err)
	}
	return nil
}

// ClientCertificate is a client certificate and its key, PEM.
type ClientCertificate struct {
	Cert, Key []byte
}

// IssueClientCertificate signs, with the CA (PEM certificate and key), a
// client certificate whose common name is user: etcd takes the common name
// of a verified client certificate as the user name.
func IssueClientCertificate(caCertPEM, caKeyPEM []byte, user string, validFor time.Duration) (ClientCertificate, error) {
	ca, caKey, err := ParseCA(caCertPEM, caKeyPEM)
	if err != nil {
		return ClientCertificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return ClientCertificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return ClientCertificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: user, Organization: []string{"marina"}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return ClientCertificate{}, fmt.Errorf("sign the client certificate of %s: %w", user, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return ClientCertificate{}, err
	}
	return ClientCertificate{
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// ParseCA reads a CA: certPEM must be a CA certificate, keyPEM its key.
func ParseCA(certPEM, keyPEM []byte) (*x509.Certificate, any, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%w: the CA's tls.crt holds no PEM certificate", ErrInvalidTLS)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the CA's tls.crt: %v", ErrInvalidTLS, err)
	}
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("%w: the certificate in tls.crt (%s) is not a CA", ErrInvalidTLS, ca.Subject.CommonName)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, fmt.Errorf("%w: the CA's tls.key holds no PEM key", ErrInvalidTLS)
	}
	var key any
	switch kb.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(kb.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the CA's tls.key: %v", ErrInvalidTLS, err)
	}
	return ca, key, nil
}

// NeedsReissue says whether a client certificate must be made again: it is
// missing or unreadable, names another user, was not signed by the CA, or
// has less than a third of its life left.
func NeedsReissue(certPEM, caCertPEM []byte, user string, now time.Time) bool {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return true
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || cert.Subject.CommonName != user {
		return true
	}
	cb, _ := pem.Decode(caCertPEM)
	if cb == nil {
		return true
	}
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil || cert.CheckSignatureFrom(ca) != nil {
		return true
	}
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotAfter.Sub(now) < life/3
}
