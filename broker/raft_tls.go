package broker

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// raftTLS loads the raft port's mutual-TLS config from the files named in
// the config (see Config.RaftTLSCertFile), or returns nil when none are set.
func (c *Config) raftTLS() (*tls.Config, error) {
	if c.RaftTLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.RaftTLSCertFile, c.RaftTLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("raft TLS certificate %s and key %s: %w", c.RaftTLSCertFile, c.RaftTLSKeyFile, err)
	}
	pem, err := os.ReadFile(c.RaftTLSCAFile)
	if err != nil {
		return nil, fmt.Errorf("raft TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("raft TLS CA %s: no PEM certificate in it", c.RaftTLSCAFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
}
