package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// writeRaftPKI writes a CA and one certificate for 127.0.0.1 (shared by
// every node, as a test shortcut) as PEM files in dir.
func writeRaftPKI(t *testing.T, dir string) (certFile, keyFile, caFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "raft CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "raft node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("node.pem", "CERTIFICATE", der), write("node.key", "PRIVATE KEY", keyDER), write("ca.pem", "CERTIFICATE", caDER)
}

// TestRaftTLSCluster: three brokers whose raft ports are mutual TLS form a
// cluster and replicate a topic; configs naming only some of the files, or
// files that are not what they should be, are refused.
func TestRaftTLSCluster(t *testing.T) {
	certFile, keyFile, caFile := writeRaftPKI(t, t.TempDir())
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
