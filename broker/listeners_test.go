package broker

import (
	"net"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

// rawClientOn dials the named listener of b.
func rawClientOn(t *testing.T, b *Broker, listener string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", b.ListenerAddr(listener))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{nc: nc}
}

// TestSeveralListeners: each listener answers Metadata, DescribeCluster
// and FindCoordinator with the endpoints of the listener the request came
// in on, and the registration carries every endpoint.
func TestSeveralListeners(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) {
		ls, err := ParseListeners("INTERNAL://127.0.0.1:0,CLIENT://127.0.0.1:0", "INTERNAL:PLAINTEXT,CLIENT:SASL_PLAINTEXT", "")
		if err != nil {
			t.Fatal(err)
		}
		ls[1].Advertise = "client.example:19094"
		c.Listeners = ls
		c.InterBrokerListener = "INTERNAL"
		u, _ := ParseSCRAMUser("SCRAM-SHA-256=[name=admin,password=admin-secret]")
		c.SCRAMUsers = []SCRAMUser{u}
		c.OffsetsTopicPartitions = 1
	})
	internal := b.ListenerAddr("INTERNAL")
	host, port, _ := net.SplitHostPort(internal)
	reg := b.node.State().Brokers[b.cfg.NodeID]
	if reg.Host != host || strconv.Itoa(int(reg.Port)) != port || len(reg.Listeners) != 2 ||
		reg.Listeners[1].Host != "client.example" || reg.Listeners[1].Port != 19094 {
		t.Fatalf("registration %+v, internal listener %s", reg, internal)
	}
	ask := func(c *rawConn) (metaHost string, metaPort int32, clusterPort, coordPort int32) {
		m := send[*kmsg.MetadataResponse](t, c, kmsg.NewPtrMetadataRequest(), 12)
		if len(m.Brokers) != 1 {
			t.Fatalf("metadata brokers %+v", m.Brokers)
		}
		dc := send[*kmsg.DescribeClusterResponse](t, c, kmsg.NewPtrDescribeClusterRequest(), 1)
		if len(dc.Brokers) != 1 {
			t.Fatalf("describe cluster brokers %+v", dc.Brokers)
		}
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKeys = []string{"g"}
		fr := send[*kmsg.FindCoordinatorResponse](t, c, fc, 4)
		if len(fr.Coordinators) != 1 || fr.Coordinators[0].ErrorCode != 0 {
			t.Fatalf("find coordinator %+v", fr.Coordinators)
		}
		return m.Brokers[0].Host, m.Brokers[0].Port, dc.Brokers[0].Port, fr.Coordinators[0].Port
	}
	h, p, dp, fp := ask(rawClientOn(t, b, "INTERNAL"))
	if h != host || strconv.Itoa(int(p)) != port || dp != p || fp != p {
		t.Fatalf("INTERNAL listener answered %s:%d, cluster %d, coordinator %d; want %s", h, p, dp, fp, internal)
	}
	c := rawClientOn(t, b, "CLIENT")
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = "PLAIN"
	if r := send[*kmsg.SASLHandshakeResponse](t, c, hs, 1); r.ErrorCode != 0 {
		t.Fatalf("handshake %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := authenticateRaw(t, c, []byte("\x00admin\x00admin-secret")); r.ErrorCode != 0 {
		t.Fatalf("login %+v", r)
	}
	h, p, dp, fp = ask(c)
	if h != "client.example" || p != 19094 || dp != 19094 || fp != 19094 {
		t.Fatalf("CLIENT listener answered %s:%d, cluster %d, coordinator %d", h, p, dp, fp)
	}
	// A broker without the CLIENT listener is left out of CLIENT's answers.
	if _, err := b.node.Apply(testCtx(t), raft.RegisterBroker{ID: 7, Host: "h7", Port: 1, IncarnationID: [16]byte{7},
		Listeners: []raft.Endpoint{{Name: "INTERNAL", Host: "h7", Port: 1}}}); err != nil {
		t.Fatal(err)
	}
	if m := send[*kmsg.MetadataResponse](t, c, kmsg.NewPtrMetadataRequest(), 12); len(m.Brokers) != 1 || m.Brokers[0].NodeID != b.cfg.NodeID {
		t.Fatalf("CLIENT metadata brokers %+v", m.Brokers)
	}
	if m := send[*kmsg.MetadataResponse](t, rawClientOn(t, b, "INTERNAL"), kmsg.NewPtrMetadataRequest(), 12); len(m.Brokers) != 2 {
		t.Fatalf("INTERNAL metadata brokers %+v", m.Brokers)
	}
}

// TestPeerDialAuthenticates: a broker's connections to a SASL_SSL
// inter-broker listener use TLS and log in with the inter-broker
// credentials (one broker dials itself).
func TestPeerDialAuthenticates(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	b := startTLSBroker(t, pki, ProtocolSASLSSL, "requested")
	ctx := testCtx(t)
	for _, tc := range []struct {
		cred SASLCredentials
		ok   bool
	}{
		{SASLCredentials{Mechanism: MechanismSCRAMSHA512, Username: "ops", Password: "ops-secret"}, true},
		{SASLCredentials{Mechanism: MechanismPlain, Username: "admin", Password: "admin-secret"}, true},
		{SASLCredentials{Mechanism: MechanismSCRAMSHA256, Username: "admin", Password: "wrong"}, false},
	} {
		b.cfg.InterBrokerSASL = tc.cred // read only by dialPeer, which runs here
		pc, err := b.dialPeer(ctx, b.Addr(), "test-peer")
		if !tc.ok {
			if err == nil {
				pc.close()
				t.Fatalf("%+v: dial passed", tc.cred)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%+v: %v", tc.cred, err)
		}
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		resp := kmsg.NewPtrMetadataResponse()
		if err := pc.do(ctx, req, resp, peerIOTimeout); err != nil || len(resp.Brokers) != 1 {
			t.Fatalf("%+v: metadata over the peer connection: %v %+v", tc.cred, err, resp)
		}
		if !hasPrincipal(b, "User:"+tc.cred.Username) {
			t.Fatalf("principals %v", principals(b))
		}
		pc.close()
	}
}
