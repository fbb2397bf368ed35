package broker

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRaftTLSCluster: three brokers whose raft ports are mutual TLS form a
// cluster and replicate a topic; configs naming only some of the files, or
// files that are not what they should be, are refused.
func TestRaftTLSCluster(t *testing.T) {
	t.Parallel()
	// The PKI of the listener TLS tests: its broker certificate names
	// 127.0.0.1 and serves as client and server, as a raft node's must.
	pki := newTestPKI(t)
	certFile, keyFile, caFile := pki.certFile, pki.keyFile, pki.caFile
	c := startTestCluster(t, 3, func(cfg *Config) {
		cfg.RaftTLSCertFile, cfg.RaftTLSKeyFile, cfg.RaftTLSCAFile = certFile, keyFile, caFile
	})
	ctx := testCtx(t)
	if _, err := newAdmin(t, c.brokers[2]).CreateTopic(ctx, 1, 3, nil, "t"); err != nil {
		t.Fatal(err)
	}
	cl := c.client(kgo.RequiredAcks(kgo.AllISRAcks()))
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	c.waitInSync("t", 0, 3)

	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"no CA", func(cfg *Config) { cfg.RaftTLSCertFile, cfg.RaftTLSKeyFile = certFile, keyFile }},
		{"key is not a key", func(cfg *Config) {
			cfg.RaftTLSCertFile, cfg.RaftTLSKeyFile, cfg.RaftTLSCAFile = certFile, caFile, caFile
		}},
		{"CA is not PEM", func(cfg *Config) {
			cfg.RaftTLSCertFile, cfg.RaftTLSKeyFile, cfg.RaftTLSCAFile = certFile, keyFile, filepath.Join(t.TempDir(), "missing")
		}},
	} {
		cfg := DefaultConfig()
		cfg.DataDir, cfg.Listen, cfg.RaftListen = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
		tc.mod(&cfg)
		b, err := Start(cfg)
		if err == nil {
			b.Close()
			t.Errorf("%s: started", tc.name)
		} else if tc.name == "no CA" && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", tc.name, err)
		}
	}
}
