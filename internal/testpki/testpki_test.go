package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
)

// A leaf verifies for its hosts against its own CA's pool and against no
// other, and its PEM files load as a Go key pair.
func TestIssueVerifies(t *testing.T) {
	ca := NewCA(t, "test CA")
	other := NewCA(t, "other CA")
	leaf := ca.Issue(t, pkix.Name{CommonName: "node"}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, "127.0.0.1", "localhost")
	for _, tc := range []struct {
		name  string
		roots *x509.CertPool
		host  string
		ok    bool
	}{
		{"own CA, IP SAN", ca.Pool, "127.0.0.1", true},
		{"own CA, DNS SAN", ca.Pool, "localhost", true},
		{"own CA, host not in SANs", ca.Pool, "example.com", false},
		{"other CA", other.Pool, "127.0.0.1", false},
	} {
		_, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: tc.roots, DNSName: tc.host})
		if (err == nil) != tc.ok {
			t.Errorf("%s: verify error %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if _, err := tls.X509KeyPair(leaf.CertPEM(), leaf.KeyPEM(t)); err != nil {
		t.Fatalf("PEM key pair: %v", err)
	}
	if ca.Cert.SerialNumber.Cmp(other.Cert.SerialNumber) == 0 {
		t.Fatal("two CAs share a serial number")
	}
}
