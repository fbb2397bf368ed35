// Package testpki makes throwaway certificate authorities and the certificates
// they sign, for tests of TLS listeners, the raft port and clients.
//
// Every key is ECDSA P-256 and every certificate is valid from an hour ago to a
// day from now, so tests never depend on clock skew. Nothing here is fit for
// anything but tests: keys come from crypto/rand but live only in memory and in
// the test's temporary folder.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// serial numbers certificates across all CAs of a test binary, so no two
// certificates a test trusts share issuer and serial.
var serial atomic.Int64

// CA is a self-signed certificate authority.
type CA struct {
	Key  *ecdsa.PrivateKey
	Cert *x509.Certificate
	DER  []byte
	// Pool holds only Cert: the trust store of a peer that trusts this CA.
	Pool *x509.CertPool
}

// Leaf is a certificate a CA signed, with its key.
type Leaf struct {
	Key  *ecdsa.PrivateKey
	Cert *x509.Certificate
	DER  []byte
}

// NewCA makes a CA whose subject is CN=cn.
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := template(pkix.Name{CommonName: cn})
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, cert := create(t, tmpl, tmpl, key, key)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Key: key, Cert: cert, DER: der, Pool: pool}
}

// Issue signs a certificate for subject with the given extended key usages.
// Each host that parses as an IP address goes into the IP SANs, any other into
// the DNS SANs.
func (ca *CA) Issue(t testing.TB, subject pkix.Name, usage []x509.ExtKeyUsage, hosts ...string) Leaf {
	t.Helper()
	key := newKey(t)
	tmpl := template(subject)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = usage
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, cert := create(t, tmpl, ca.Cert, key, ca.Key)
	return Leaf{Key: key, Cert: cert, DER: der}
}

// TLS is the leaf as a certificate for tls.Config.Certificates.
func (l Leaf) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{l.DER}, PrivateKey: l.Key, Leaf: l.Cert}
}

// CertPEM is the leaf's certificate as a PEM block.
func (l Leaf) CertPEM() []byte { return PEM("CERTIFICATE", l.DER) }

// KeyPEM is the leaf's key as a PKCS#8 "PRIVATE KEY" PEM block, the form both
// Go and Kafka's PEM keystores read.
func (l Leaf) KeyPEM(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(l.Key)
	if err != nil {
		t.Fatal(err)
	}
	return PEM("PRIVATE KEY", der)
}

// CertPEM is the CA's certificate as a PEM block.
func (ca *CA) CertPEM() []byte { return PEM("CERTIFICATE", ca.DER) }

// PEM encodes der as one PEM block of type typ.
func PEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// WriteFile writes b to dir/name, readable only by the owner, and returns the
// path.
func WriteFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func template(subject pkix.Name) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
	}
}

func create(t testing.TB, tmpl, parent *x509.Certificate, key, signer *ecdsa.PrivateKey) ([]byte, *x509.Certificate) {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return der, cert
}
