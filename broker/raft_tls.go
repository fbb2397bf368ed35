package broker

import (
	"crypto/tls"
	"fmt"
)

// raftTLS loads the raft port's mutual-TLS config from the files named in
// the config (see Config.RaftTLSCertFile), or returns nil when none are set.
// It is a TLS listener's config with client certificates required, whose
// one CA also verifies the peers this node dials.
func (c *Config) raftTLS() (*tls.Config, error) {
	if c.RaftTLSCertFile == "" {
		return nil, nil
	}
	cfg, err := TLSConfig{CertFile: c.RaftTLSCertFile, KeyFile: c.RaftTLSKeyFile, ClientCAFile: c.RaftTLSCAFile,
		ClientAuth: "required"}.serverTLS()
	if err != nil {
		return nil, fmt.Errorf("raft TLS: %w", err)
	}
	cfg.RootCAs = cfg.ClientCAs
	return cfg, nil
}
