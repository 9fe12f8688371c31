package externaletcd

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/marina-platform/marina/internal/localenv/pki"
)

func TestNeedsReissue(t *testing.T) {
	ca, other := newCA(t, "etcd client CA"), newCA(t, "another CA")
	fresh := issue(t, ca, "marina-a", 365*24*time.Hour)
	now := time.Now()
	for _, tc := range []struct {
		name        string
		cert, ca    []byte
		user        string
		at          time.Time
		wantReissue bool
	}{
		{"fresh, same user and CA", fresh, ca.CertPEM, "marina-a", now, false},
		{"missing", nil, ca.CertPEM, "marina-a", now, true},
		{"not PEM", []byte("garbage"), ca.CertPEM, "marina-a", now, true},
		{"another user", fresh, ca.CertPEM, "marina-b", now, true},
		{"another CA", fresh, other.CertPEM, "marina-a", now, true},
		{"a third of its life left", fresh, ca.CertPEM, "marina-a", now.Add(250 * 24 * time.Hour), true},
		{"just over a third left", fresh, ca.CertPEM, "marina-a", now.Add(240 * 24 * time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NeedsReissue(tc.cert, tc.ca, tc.user, tc.at); got != tc.wantReissue {
				t.Errorf("NeedsReissue = %v, want %v", got, tc.wantReissue)
			}
		})
	}
}

func TestIssueClientCertificate(t *testing.T) {
	authority, err := pki.NewCA("etcd client CA")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := authority.KeyPair()
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(issue(t, ca, "marina-a", time.Hour))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	// etcd takes the verified certificate's common name as the user.
	if cert.Subject.CommonName != "marina-a" || cert.IsCA {
		t.Errorf("subject %s, CA %v", cert.Subject, cert.IsCA)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("extended key usages %v, want client authentication only", cert.ExtKeyUsage)
	}
	leaf, err := authority.Issue(pki.Request{CommonName: "not a CA", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][2][]byte{
		"a leaf as CA": {leaf.CertPEM, leaf.KeyPEM},
		"no key":       {ca.CertPEM, nil},
		"no cert":      {nil, ca.KeyPEM},
	} {
		if _, err := IssueClientCertificate(in[0], in[1], "marina-a", time.Hour); !errors.Is(err, ErrInvalidTLS) {
			t.Errorf("%s: %v, want ErrInvalidTLS", name, err)
		}
	}
}

func newCA(t *testing.T, name string) *pki.KeyPair {
	t.Helper()
	ca, err := pki.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.KeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func issue(t *testing.T, ca *pki.KeyPair, user string, d time.Duration) []byte {
	t.Helper()
	cc, err := IssueClientCertificate(ca.CertPEM, ca.KeyPEM, user, d)
	if err != nil {
		t.Fatal(err)
	}
	return cc.Cert
}
