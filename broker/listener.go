package broker

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// SecurityProtocol is a listener's security protocol (Kafka's
// security.protocol values).
type SecurityProtocol string

// Security protocols.
const (
	ProtocolPlaintext     SecurityProtocol = "PLAINTEXT"
	ProtocolSSL           SecurityProtocol = "SSL"
	ProtocolSASLPlaintext SecurityProtocol = "SASL_PLAINTEXT"
	ProtocolSASLSSL       SecurityProtocol = "SASL_SSL"
)

// ParseSecurityProtocol parses a protocol name, case-insensitively.
func ParseSecurityProtocol(s string) (SecurityProtocol, error) {
	switch p := SecurityProtocol(strings.ToUpper(strings.TrimSpace(s))); p {
	case ProtocolPlaintext, ProtocolSSL, ProtocolSASLPlaintext, ProtocolSASLSSL:
		return p, nil
	}
	return "", fmt.Errorf("%w: unknown security protocol %q (want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)", ErrInvalidListener, s)
}

func (p SecurityProtocol) usesTLS() bool  { return p == ProtocolSSL || p == ProtocolSASLSSL }
func (p SecurityProtocol) usesSASL() bool { return p == ProtocolSASLPlaintext || p == ProtocolSASLSSL }

// Listener is one Kafka listener: a name (the key of
// listener.security.protocol.map and of advertised.listeners), its
// security protocol, the address it binds and the one it publishes.
type Listener struct {
	// Name is upper case, e.g. "PLAINTEXT", "SASL_SSL" or "INTERNAL".
	Name     string
	Protocol SecurityProtocol
	// Addr is the HOST:PORT bound; port 0 picks a free port (tests); an
	// empty host binds every interface.
	Addr string
	// Advertise is the HOST:PORT published in metadata; empty means the
	// bound address.
	Advertise string
}

// listenerNameRE is what a listener name may hold (Kafka upper-cases names
// and uses them in config keys).
var listenerNameRE = regexp.MustCompile(`^[A-Z0-9_\-.]+$`)

// endpoint is one NAME://HOST:PORT entry.
type endpoint struct {
	name, addr string
}

// parseEndpoints parses Kafka's listeners syntax: comma-separated
// NAME://HOST:PORT entries (HOST may be empty or a bracketed IPv6 address).
// Names are upper-cased and must be unique.
func parseEndpoints(s string) ([]endpoint, error) {
	var out []endpoint
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, addr, ok := strings.Cut(item, "://")
		if !ok {
			return nil, fmt.Errorf("%w: %q is not NAME://HOST:PORT", ErrInvalidListener, item)
		}
		name = strings.ToUpper(name)
		if !listenerNameRE.MatchString(name) {
			return nil, fmt.Errorf("%w: bad listener name %q", ErrInvalidListener, name)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrInvalidListener, item, err)
		}
		if strings.ContainsAny(host, "/ ") {
			return nil, fmt.Errorf("%w: %q: bad host", ErrInvalidListener, item)
		}
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(p, 10) != port {
			return nil, fmt.Errorf("%w: %q: bad port %q", ErrInvalidListener, item, port)
		}
		for _, e := range out {
			if e.name == name {
				return nil, fmt.Errorf("%w: listener %s given twice", ErrInvalidListener, name)
			}
		}
		out = append(out, endpoint{name: name, addr: net.JoinHostPort(host, port)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no listener in %q", ErrInvalidListener, s)
	}
	return out, nil
}

// ParseProtocolMap parses listener.security.protocol.map: comma-separated
// NAME:PROTOCOL pairs.
func ParseProtocolMap(s string) (map[string]SecurityProtocol, error) {
	out := map[string]SecurityProtocol{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, proto, ok := strings.Cut(item, ":")
		name = strings.ToUpper(strings.TrimSpace(name))
		if !ok || !listenerNameRE.MatchString(name) {
			return nil, fmt.Errorf("%w: protocol map entry %q is not NAME:PROTOCOL", ErrInvalidListener, item)
		}
		p, err := ParseSecurityProtocol(proto)
		if err != nil {
			return nil, err
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: protocol map names %s twice", ErrInvalidListener, name)
		}
		out[name] = p
	}
	return out, nil
}

// ParseListeners builds the listener list from Kafka's listeners,
// listener.security.protocol.map (may be empty: then every name must be a
// protocol name) and advertised.listeners (may be empty; its names must be
// among the listeners).
func ParseListeners(listeners, protocolMap, advertised string) ([]Listener, error) {
	eps, err := parseEndpoints(listeners)
	if err != nil {
		return nil, err
	}
	pm, err := ParseProtocolMap(protocolMap)
	if err != nil {
		return nil, err
	}
	out := make([]Listener, 0, len(eps))
	for _, e := range eps {
		p, ok := pm[e.name]
		if !ok {
			if p, err = ParseSecurityProtocol(e.name); err != nil {
				return nil, fmt.Errorf("%w: no security protocol for listener %s (add it to the listener security protocol map)", ErrInvalidListener, e.name)
			}
		}
		out = append(out, Listener{Name: e.name, Protocol: p, Addr: e.addr})
	}
	if strings.TrimSpace(advertised) != "" {
		adv, err := parseEndpoints(advertised)
		if err != nil {
			return nil, err
		}
	next:
		for _, a := range adv {
			for i := range out {
				if out[i].Name == a.name {
					out[i].Advertise = a.addr
					continue next
				}
			}
			return nil, fmt.Errorf("%w: advertised listener %s is not among the listeners", ErrInvalidListener, a.name)
		}
	}
	return out, validateListeners(out)
}

// validateListeners checks names, protocols and ports of a listener list.
func validateListeners(ls []Listener) error {
	names := map[string]bool{}
	ports := map[string]string{}
	for _, l := range ls {
		if !listenerNameRE.MatchString(l.Name) {
			return fmt.Errorf("%w: bad listener name %q", ErrInvalidListener, l.Name)
		}
		if _, err := ParseSecurityProtocol(string(l.Protocol)); err != nil {
			return fmt.Errorf("listener %s: %w", l.Name, err)
		}
		if names[l.Name] {
			return fmt.Errorf("%w: listener %s given twice", ErrInvalidListener, l.Name)
		}
		names[l.Name] = true
		_, port, err := net.SplitHostPort(l.Addr)
		if err != nil {
			return fmt.Errorf("%w: listener %s address %q: %w", ErrInvalidListener, l.Name, l.Addr, err)
		}
		if l.Advertise != "" {
			if _, _, err := net.SplitHostPort(l.Advertise); err != nil {
				return fmt.Errorf("%w: listener %s advertised address %q: %w", ErrInvalidListener, l.Name, l.Advertise, err)
			}
		}
		if port != "0" {
			if other, dup := ports[port]; dup {
				return fmt.Errorf("%w: listeners %s and %s both use port %s", ErrInvalidListener, other, l.Name, port)
			}
			ports[port] = l.Name
		}
	}
	return nil
}

// TLSConfig is the broker's TLS setup for SSL and SASL_SSL listeners.
type TLSConfig struct {
	// CertFile and KeyFile hold the server certificate (chain) and its
	// private key, PEM.
	CertFile, KeyFile string
	// ClientCAFile holds the PEM CA certificates client certificates are
	// verified against (ssl.truststore); needed when ClientAuth is not
	// "none".
	ClientCAFile string
	// ClientAuth is ssl.client.auth: "none" (default), "requested" (a
	// client certificate is verified when sent) or "required".
	ClientAuth string
}

// serverTLS builds the tls.Config of TLS listeners from files.
func (t TLSConfig) serverTLS() (*tls.Config, error) {
	if t.CertFile == "" || t.KeyFile == "" {
		return nil, fmt.Errorf("%w: a TLS listener needs a certificate and key file", ErrInvalidConfig)
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", t.CertFile, t.KeyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	switch strings.ToLower(t.ClientAuth) {
	case "", "none":
		cfg.ClientAuth = tls.NoClientCert
	case "requested":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case "required":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, fmt.Errorf("%w: ssl client auth %q (want none, requested or required)", ErrInvalidConfig, t.ClientAuth)
	}
	if t.ClientCAFile != "" {
		if cfg.ClientCAs, err = readCAPool(t.ClientCAFile); err != nil {
			return nil, err
		}
	} else if cfg.ClientAuth != tls.NoClientCert {
		return nil, fmt.Errorf("%w: ssl client auth %s needs a client CA file", ErrInvalidConfig, t.ClientAuth)
	}
	return cfg, nil
}

// clientTLS builds the tls.Config of this broker's connections to other
// brokers' TLS inter-broker listener: their certificate is verified against
// ClientCAFile (the truststore; the system roots when empty), and this
// broker presents its own certificate in case they require one.
func (t TLSConfig) clientTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", t.CertFile, t.KeyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile != "" {
		if cfg.RootCAs, err = readCAPool(t.ClientCAFile); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// readCAPool reads the PEM CA certificates in path.
func readCAPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read TLS CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: no PEM certificate in %s", ErrInvalidConfig, path)
	}
	return pool, nil
}

// boundListener is a listener bound to its socket. Immutable after Start.
type boundListener struct {
	Listener
	ln   net.Listener
	addr string      // bound HOST:PORT
	tls  *tls.Config // nil unless Protocol uses TLS
}

// advertised is the HOST:PORT published for the listener.
func (l *boundListener) advertised() string {
	if l.Advertise != "" {
		return l.Advertise
	}
	return l.addr
}

// listeners is the configured listener list: Listeners, or one PLAINTEXT
// listener on Listen advertising Advertise.
func (c *Config) listeners() []Listener {
	if len(c.Listeners) > 0 {
		return c.Listeners
	}
	return []Listener{{Name: string(ProtocolPlaintext), Protocol: ProtocolPlaintext, Addr: c.Listen, Advertise: c.Advertise}}
}

// interBrokerListener returns the listener other brokers dial.
func (c *Config) interBrokerListener() (Listener, bool) {
	ls := c.listeners()
	if c.InterBrokerListener == "" {
		return ls[0], true
	}
	for _, l := range ls {
		if l.Name == strings.ToUpper(c.InterBrokerListener) {
			return l, true
		}
	}
	return Listener{}, false
}

// SASLCredentials is a SASL client identity: what a broker presents to
// the other brokers' inter-broker listener.
type SASLCredentials struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism          string
	Username, Password string
}

// validateSecurity checks listeners, SASL mechanisms and bootstrap
// credentials.
func (c *Config) validateSecurity() error {
	ls := c.listeners()
	if err := validateListeners(ls); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	ib, ok := c.interBrokerListener()
	if !ok {
		return fmt.Errorf("%w: inter-broker listener %s is not among the listeners", ErrInvalidConfig, c.InterBrokerListener)
	}
	// Only brokers of a multi-node cluster (static voters, maybe joined by
	// broker-only nodes) dial each other.
	if ib.Protocol.usesSASL() && len(c.Voters) > 0 {
		ic := c.InterBrokerSASL
		if ic.Mechanism != MechanismPlain && scramByName(ic.Mechanism) == nil {
			return fmt.Errorf("%w: inter-broker listener %s uses SASL: set the inter-broker SASL mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), got %q",
				ErrInvalidConfig, ib.Name, ic.Mechanism)
		}
		if ic.Username == "" || ic.Password == "" {
			return fmt.Errorf("%w: inter-broker listener %s uses SASL: set the inter-broker SASL username and password", ErrInvalidConfig, ib.Name)
		}
	}
	needTLS, needSASL := false, false
	for _, l := range ls {
		needTLS = needTLS || l.Protocol.usesTLS()
		needSASL = needSASL || l.Protocol.usesSASL()
	}
	if needTLS {
		if _, err := c.TLS.serverTLS(); err != nil {
			return err
		}
	}
	for _, m := range c.SASLMechanisms {
		if m != MechanismPlain && m != MechanismOAuthBearer && scramByName(m) == nil {
			return fmt.Errorf("%w: SASL mechanism %q not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)", ErrInvalidConfig, m)
		}
	}
	if slices.Contains(c.SASLMechanisms, MechanismOAuthBearer) {
		if err := c.OAuthBearer.validate(); err != nil {
			return err
		}
	}
	if c.ConnectionsMaxReauth < 0 {
		return fmt.Errorf("%w: connections max reauth %v is negative", ErrInvalidConfig, c.ConnectionsMaxReauth)
	}
	if needSASL && len(c.SASLMechanisms) == 0 {
		return fmt.Errorf("%w: a SASL listener needs an enabled SASL mechanism", ErrInvalidConfig)
	}
	for _, s := range c.SCRAMUsers {
		if err := s.validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	return nil
}
