package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
)

func TestIssuedCertificatesVerifyAgainstTheirCA(t *testing.T) {
	ca, err := NewCA("marina-test")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		req   Request
		usage x509.ExtKeyUsage
		host  string
	}{
		{"API server", Request{CommonName: "kube-apiserver", DNSNames: []string{"kubernetes.default.svc"}, IPs: []net.IP{net.ParseIP("10.210.1.2")}, Server: true}, x509.ExtKeyUsageServerAuth, "10.210.1.2"},
		{"etcd peer", Request{CommonName: "etcd-0", DNSNames: []string{"etcd-0"}, Server: true, Client: true}, x509.ExtKeyUsageClientAuth, "etcd-0"},
		{"admin", Request{CommonName: "admin", Organizations: []string{"system:masters"}, Client: true}, x509.ExtKeyUsageClientAuth, ""},
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kp, err := ca.Issue(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			pair, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
			if err != nil {
				t.Fatalf("certificate and key do not match: %v", err)
			}
			leaf, err := x509.ParseCertificate(pair.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: tc.host, KeyUsages: []x509.ExtKeyUsage{tc.usage}}); err != nil {
				t.Errorf("does not verify for %q: %v", tc.host, err)
			}
		})
	}
}

func TestIssueRejectsACertificateWithoutUsage(t *testing.T) {
	ca, err := NewCA("marina-test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Issue(Request{CommonName: "nobody"}); err == nil {
		t.Fatal("want an error for a certificate that is neither server nor client")
	}
}

func TestLoadOrCreateCAReusesTheCA(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadOrCreateCA(dir, "marina-test")
	if err != nil {
		t.Fatal(err)
	}
	second, err := LoadOrCreateCA(dir, "marina-test")
	if err != nil {
		t.Fatal(err)
	}
	if !first.Cert.Equal(second.Cert) {
		t.Fatal("a second call made a new CA; existing kubeconfigs would stop working")
	}
}
