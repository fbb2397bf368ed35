package broker

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/stromhq/strom/internal/testpki"
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
	ca := testpki.NewCA(t, "strom test CA")
	// The broker certificate also authenticates the broker as a client of
	// other brokers.
	srv := ca.Issue(t, pkix.Name{CommonName: "127.0.0.1"},
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, "127.0.0.1")
	cli := ca.Issue(t, pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"eng"}, Organization: []string{"acme"}},
		[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	return &testPKI{
		caFile:   testpki.WriteFile(t, dir, "ca.pem", ca.CertPEM()),
		certFile: testpki.WriteFile(t, dir, "server.pem", srv.CertPEM()),
		keyFile:  testpki.WriteFile(t, dir, "server.key", srv.KeyPEM(t)),
		pool:     ca.Pool,
		client:   cli.TLS(),
	}
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
