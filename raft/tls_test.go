package raft

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/testpki"
)

// plainDial connects without TLS.
func plainDial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// nodeTLS returns a mutual-TLS config for a node at 127.0.0.1 whose
// certificate ca signed and which trusts trust.
func nodeTLS(t *testing.T, ca *testpki.CA, trust *x509.CertPool) *tls.Config {
	t.Helper()
	leaf := ca.Issue(t, pkix.Name{CommonName: "raft node"},
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, "127.0.0.1")
	return &tls.Config{Certificates: []tls.Certificate{leaf.TLS()},
		RootCAs: trust, ClientCAs: trust, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
}

// TestRaftTLS: with mutual TLS on the raft port a cluster forms, replicates
// and forwards as over TCP; a peer without TLS or with a certificate of
// another CA reaches nothing, and the cluster carries on.
func TestRaftTLS(t *testing.T) {
	ctx := testCtx(t)
	ca := testpki.NewCA(t, "cluster CA")
	c := newStaticClusterTLS(t, 3, 0, func(i int) *tls.Config { return nodeTLS(t, ca, ca.Pool) })
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
	rogue := testpki.NewCA(t, "another CA")
	for _, tc := range []struct {
		name string
		dial dialFunc
	}{
		{"plain TCP", plainDial},
		{"certificate of another CA", func(ctx context.Context, addr string) (net.Conn, error) {
			cfg := nodeTLS(t, rogue, ca.Pool) // trusts the cluster, but the cluster does not trust it
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
	foreign, err := newTCPStream("127.0.0.1:0", nil, nodeTLS(t, rogue, rogue.Pool), func(net.Conn) {})
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
