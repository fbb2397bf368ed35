package raft

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"
)

// plainDial connects without TLS.
func plainDial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// testCA is a throwaway certificate authority for raft TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// nodeTLS returns a mutual-TLS config for a node at 127.0.0.1 whose
// certificate ca signed and which trusts trust.
func (ca *testCA) nodeTLS(t *testing.T, serial int64, trust *x509.CertPool) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "raft node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs: trust, ClientCAs: trust, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
}

// TestRaftTLS: with mutual TLS on the raft port a cluster forms, replicates
// and forwards as over TCP; a peer without TLS or with a certificate of
// another CA reaches nothing, and the cluster carries on.
func TestRaftTLS(t *testing.T) {
	ctx := testCtx(t)
	ca := newTestCA(t, "cluster CA")
	c := newStaticClusterTLS(t, 3, 0, func(i int) *tls.Config { return ca.nodeTLS(t, int64(10+i), ca.pool) })
	f := c.follower(ctx)
	res, err := f.Apply(ctx, CreateTopic{Topic: topic("t", idA, 1, 1, 2, 3)})
	if err != nil || f.State().Version < res.Index {
		t.Fatalf("apply through a follower over TLS: %+v %v", res, err)
	}
	for _, n := range c.nodes {
		for n.State().Topics["t"] == nil {
			select {
			case <-ctx.Done():
				t.Fatalf("node %d never applied the topic", n.ID())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}

	l := c.leader()
	if l == nil {
		t.Fatal("no leader")
	}
	body := encodeApplyRequest(time.Second, []Command{DeleteTopic{ID: idA}})
	rogue := newTestCA(t, "another CA")
	for _, tc := range []struct {
		name string
		dial dialFunc
	}{
		{"plain TCP", plainDial},
		{"certificate of another CA", func(ctx context.Context, addr string) (net.Conn, error) {
			cfg := rogue.nodeTLS(t, 99, ca.pool) // trusts the cluster, but the cluster does not trust it
			cfg.ServerName = "127.0.0.1"
			var d tls.Dialer
			d.Config = cfg
			return d.DialContext(ctx, "tcp", addr)
		}},
	} {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := forwardCall(cctx, tc.dial, l.Addr(), body)
		cancel()
		if err == nil {
			t.Errorf("%s: a forwarded DeleteTopic was answered", tc.name)
		}
	}
	if l.State().Topics["t"] == nil {
		t.Fatal("a peer outside the cluster deleted a topic")
	}
	// A node whose client side trusts another CA cannot join either: its
	// dial fails the server's verification.
	foreign, err := newTCPStream("127.0.0.1:0", nil, rogue.nodeTLS(t, 98, rogue.pool), func(net.Conn) {})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { foreign.Close(); foreign.wait() }()
	if _, err := forwardCall(ctx, foreign.dialContext, l.Addr(), body); !errors.Is(err, errUnreachable) {
		t.Errorf("dial with a foreign CA: %v, want unreachable", err)
	}
	if _, err := f.Apply(ctx, DeleteTopic{ID: idA}); err != nil {
		t.Fatalf("cluster after the rogue peers: %v", err)
	}
}
