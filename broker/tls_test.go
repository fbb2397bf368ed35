package broker

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate for CN=alice,OU=eng,O=acme, all ECDSA P-256, written as PEM
// files into a temp dir.
type testPKI struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "strom test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, subject pkix.Name, usage []x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: subject, NotBefore: now.Add(-time.Hour),
			NotAfter: now.Add(24 * time.Hour), ExtKeyUsage: usage, IPAddresses: ips,
			KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	writePEM := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pki := &testPKI{caFile: writePEM("ca.pem", "CERTIFICATE", caDER), pool: x509.NewCertPool()}
	pki.pool.AddCert(ca)
	// The broker certificate also authenticates the broker as a client of
	// other brokers.
	srvDER, srvKey := issue(2, pkix.Name{CommonName: "127.0.0.1"}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		[]net.IP{net.IPv4(127, 0, 0, 1)})
	pki.certFile = writePEM("server.pem", "CERTIFICATE", srvDER)
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	pki.keyFile = writePEM("server.key", "EC PRIVATE KEY", keyDER)
	cliDER, cliKey := issue(3, pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"eng"}, Organization: []string{"acme"}},
		[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil)
	pki.client = tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}
	return pki
}

func (p *testPKI) clientTLS(withCert bool) *tls.Config {
	cfg := &tls.Config{RootCAs: p.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if withCert {
		cfg.Certificates = []tls.Certificate{p.client}
	}
	return cfg
}

func startTLSBroker(t *testing.T, pki *testPKI, proto SecurityProtocol, clientAuth string) *Broker {
	return startSASLBroker(t, proto, func(c *Config) {
		c.TLS = TLSConfig{CertFile: pki.certFile, KeyFile: pki.keyFile, ClientCAFile: pki.caFile, ClientAuth: clientAuth}
	})
}

func hasPrincipal(b *Broker, p string) bool { return slices.Contains(principals(b), p) }

// TestSSLListener: the client certificate's subject is the principal, and
// fetches larger than the sendfile threshold arrive intact through TLS.
func TestSSLListener(t *testing.T) {
	pki := newTestPKI(t)
	b := startTLSBroker(t, pki, ProtocolSSL, "required")
	cl := newClient(t, b, kgo.DialTLSConfig(pki.clientTLS(true)), kgo.ConsumeTopics("tls"), kgo.AllowAutoTopicCreation(),
		kgo.ProducerBatchMaxBytes(4<<20), kgo.FetchMaxBytes(8<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	big := make([]byte, 256<<10) // above sendfileMin, so the writer's file-to-socket path runs
	_, _ = rand.Read(big)
	ctx := testCtx(t)
	for i := 0; i < 3; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "tls", Value: big}).FirstErr(); err != nil {
			t.Fatalf("produce over TLS: %v", err)
		}
	}
	got := 0
	for got < 3 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("fetch over TLS: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !bytes.Equal(r.Value, big) {
				t.Fatalf("record %d: %d bytes differ", r.Offset, len(r.Value))
			}
			got++
		})
	}
	if !hasPrincipal(b, "User:CN=alice,OU=eng,O=acme") {
		t.Fatalf("principals %v", principals(b))
	}
	// Without a certificate the handshake fails.
	nc, err := tls.Dial("tcp", b.Addr(), pki.clientTLS(false))
	if err == nil {
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		var one [1]byte
		_, err = nc.Read(one[:]) // TLS 1.3 reports the missing certificate after the handshake
		nc.Close()
	}
	if err == nil {
		t.Fatal("TLS connection without a client certificate accepted")
	}
}

func TestSSLListenerAnonymous(t *testing.T) {
	pki := newTestPKI(t)
	b := startTLSBroker(t, pki, ProtocolSSL, "none")
	cl := newClient(t, b, kgo.DialTLSConfig(pki.clientTLS(false)))
	if err := cl.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if p := principals(b); len(p) == 0 || !hasPrincipal(b, anonymous) || hasPrincipal(b, "User:CN=alice,OU=eng,O=acme") {
		t.Fatalf("principals %v", p)
	}
}

// TestSASLSSLListener: on SASL_SSL the SASL user is the principal even when
// the client also presents a certificate.
func TestSASLSSLListener(t *testing.T) {
	pki := newTestPKI(t)
	b := startTLSBroker(t, pki, ProtocolSASLSSL, "requested")
	tlsOpt := kgo.DialTLSConfig(pki.clientTLS(true))
	if _, err := pingAs(t, b, scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha256Mechanism(), tlsOpt); err != nil {
		t.Fatalf("SCRAM over TLS: %v", err)
	}
	if !hasPrincipal(b, "User:admin") {
		t.Fatalf("principals %v", principals(b))
	}
	if _, err := pingAs(t, b, scram.Auth{User: "admin", Pass: "wrong"}.AsSha256Mechanism(), tlsOpt); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("wrong password over TLS: %v", err)
	}
}

func TestRFC2253NameOrder(t *testing.T) {
	oid := func(ids ...int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier(ids) }
	seq := pkix.RDNSequence{
		{{Type: oid(2, 5, 4, 6), Value: "DE"}},
		{{Type: oid(2, 5, 4, 10), Value: "acme, inc"}},
		{{Type: oid(2, 5, 4, 11), Value: "eng"}, {Type: oid(0, 9, 2342, 19200300, 100, 1, 1), Value: "u1"}},
		{{Type: oid(2, 5, 4, 3), Value: "alice"}},
		{{Type: oid(1, 2, 840, 113549, 1, 9, 1), Value: asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte("a@x")}}},
	}
	raw, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	got, err := rfc2253Name(raw)
	want := `1.2.840.113549.1.9.1=#1603614078,CN=alice,OU=eng+UID=u1,O=acme\, inc,C=DE`
	if err != nil || got != want {
		t.Fatalf("got %q %v, want %q", got, err, want)
	}
	if _, err := rfc2253Name([]byte{0x30, 0x05}); err == nil {
		t.Fatal("truncated name accepted")
	}
}
