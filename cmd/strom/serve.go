package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stromhq/strom/broker"
	"github.com/stromhq/strom/raft"
)

// newServeCmd maps flags (or config-file lines, or STROM_* environment
// variables) onto broker.Config and runs the broker until SIGTERM/SIGINT.
func newServeCmd() *cobra.Command {
	cfg := broker.DefaultConfig()
	var configFile, logLevel, debugListen string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Kafka-compatible broker",
		Long: `Run a Kafka-compatible broker.

Every flag can also be set in a config file (--config FILE, key=value lines
named like the flags, # comments) or in an environment variable STROM_<FLAG>
(upper case, dashes as underscores, e.g. STROM_DATA_DIR). A flag on the
command line wins over the environment, which wins over the config file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfigSources(cmd.Flags(), configFile); err != nil {
				return err
			}
			if err := finishServeConfig(cmd.Flags(), &cfg); err != nil {
				return err
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: %w", logLevel, err)
			}
			cfg.Logger = slog.New(readyAlways(os.Stderr, level))
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if debugListen != "" {
				_, stopDebug, err := serveDebug(debugListen, cfg.Logger)
				if err != nil {
					return err
				}
				defer stopDebug()
			}
			b, err := broker.StartContext(ctx, cfg)
			if err != nil {
				return err
			}
			<-ctx.Done()
			cfg.Logger.Info("shutting down", "signal", context.Cause(ctx))
			return b.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "config file of key=value lines named like the flags")
	addServeFlags(f, &cfg)
	f.StringVar(&logLevel, "log-level", "info", "debug|info|warn|error")
	f.StringVar(&debugListen, "debug-listen", "", "HOST:PORT serving Go's pprof profiles under /debug/pprof/ (off when empty)")
	return cmd
}

// addServeFlags registers the flags that map onto cfg, with cfg's values as
// defaults.
func addServeFlags(f *pflag.FlagSet, cfg *broker.Config) {
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory of partition logs and raft data")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "HOST:PORT of the Kafka listener")
	f.StringVar(&cfg.Advertise, "advertise", cfg.Advertise, "HOST:PORT published to clients (default: the listen address)")
	f.String("listeners", "", "Kafka listeners NAME://HOST:PORT,... (listeners); a name without --listener-security-protocol-map entry must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL. Replaces --listen")
	f.String("listener-security-protocol-map", "", "NAME:PROTOCOL,... for listener names that are not protocol names (listener.security.protocol.map)")
	f.String("advertised-listeners", "", "NAME://HOST:PORT,... published to clients (advertised.listeners; default: the bound addresses)")
	f.StringVar(&cfg.InterBrokerListener, "inter-broker-listener-name", cfg.InterBrokerListener, "listener other brokers connect to (inter.broker.listener.name; default: the first listener); the same on every broker")
	f.StringVar(&cfg.InterBrokerSASL.Mechanism, "inter-broker-sasl-mechanism", cfg.InterBrokerSASL.Mechanism, "SASL mechanism this broker uses on a SASL inter-broker listener (sasl.mechanism.inter.broker.protocol)")
	f.StringVar(&cfg.InterBrokerSASL.Username, "inter-broker-sasl-username", cfg.InterBrokerSASL.Username, "SASL user this broker authenticates as on a SASL inter-broker listener")
	f.StringVar(&cfg.InterBrokerSASL.Password, "inter-broker-sasl-password", cfg.InterBrokerSASL.Password, "password of --inter-broker-sasl-username (prefer STROM_INTER_BROKER_SASL_PASSWORD or --config)")
	f.StringSliceVar(&cfg.SASLMechanisms, "sasl-enabled-mechanisms", cfg.SASLMechanisms, "SASL mechanisms of SASL listeners: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (sasl.enabled.mechanisms)")
	f.Var(unitDuration{&cfg.ConnectionsMaxReauth, time.Millisecond}, "connections-max-reauth-ms", "longest SASL session before the client must re-authenticate on its connection, 0 = no limit (connections.max.reauth.ms, KIP-368)")
	dt := &cfg.DelegationTokens
	f.StringVar(&dt.SecretKey, "delegation-token-secret-key", dt.SecretKey, "HMAC key of delegation tokens, the same on every broker; empty disables them (delegation.token.secret.key; prefer STROM_DELEGATION_TOKEN_SECRET_KEY or --config)")
	f.Var(unitDuration{&dt.MaxLifetime, time.Millisecond}, "delegation-token-max-lifetime-ms", "longest a delegation token lives, renewals included (delegation.token.max.lifetime.ms)")
	f.Var(unitDuration{&dt.ExpiryTime, time.Millisecond}, "delegation-token-expiry-time-ms", "how long a delegation token lives after creation or renewal unless the request asks less (delegation.token.expiry.time.ms)")
	f.Var(unitDuration{&dt.ExpiryCheckInterval, time.Millisecond}, "delegation-token-expiry-check-interval-ms", "how often the controller removes expired delegation tokens (delegation.token.expiry.check.interval.ms)")
	o := &cfg.OAuthBearer
	f.StringVar(&o.JWKSEndpointURL, "sasl-oauthbearer-jwks-endpoint-url", o.JWKSEndpointURL, "file:// or https:// URL of the JWKS that OAUTHBEARER tokens are verified against; empty: Kafka's unsecured validator (sasl.oauthbearer.jwks.endpoint.url)")
	f.Var(unitDuration{&o.JWKSRefresh, time.Millisecond}, "sasl-oauthbearer-jwks-endpoint-refresh-ms", "how often the JWKS is fetched again (sasl.oauthbearer.jwks.endpoint.refresh.ms)")
	f.Var(unitDuration{&o.JWKSRetryBackoff, time.Millisecond}, "sasl-oauthbearer-jwks-endpoint-retry-backoff-ms", "wait before retrying a failed JWKS fetch (sasl.oauthbearer.jwks.endpoint.retry.backoff.ms)")
	f.Var(unitDuration{&o.JWKSRetryBackoffMax, time.Millisecond}, "sasl-oauthbearer-jwks-endpoint-retry-backoff-max-ms", "longest wait between JWKS fetch retries (sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms)")
	f.StringVar(&o.JWKSCAFile, "sasl-oauthbearer-jwks-ca-file", o.JWKSCAFile, "PEM CA certificates an https JWKS endpoint is verified against (default: the system roots)")
	f.StringSliceVar(&o.ExpectedAudience, "sasl-oauthbearer-expected-audience", o.ExpectedAudience, "audiences of which an OAUTHBEARER token's aud must name one (sasl.oauthbearer.expected.audience)")
	f.StringVar(&o.ExpectedIssuer, "sasl-oauthbearer-expected-issuer", o.ExpectedIssuer, "issuer an OAUTHBEARER token's iss must equal (sasl.oauthbearer.expected.issuer)")
	f.StringVar(&o.SubClaimName, "sasl-oauthbearer-sub-claim-name", o.SubClaimName, "claim holding the principal name of signed tokens (sasl.oauthbearer.sub.claim.name)")
	f.StringVar(&o.ScopeClaimName, "sasl-oauthbearer-scope-claim-name", o.ScopeClaimName, "claim holding the scope of signed tokens (sasl.oauthbearer.scope.claim.name)")
	f.Var(unitDuration{&o.ClockSkew, time.Second}, "sasl-oauthbearer-clock-skew-seconds", "clock difference allowed when checking exp and nbf of signed tokens (sasl.oauthbearer.clock.skew.seconds)")
	f.StringVar(&o.UnsecuredPrincipalClaimName, "sasl-oauthbearer-unsecured-principal-claim-name", o.UnsecuredPrincipalClaimName, "claim holding the principal name of unsecured tokens (unsecuredValidatorPrincipalClaimName)")
	f.StringVar(&o.UnsecuredScopeClaimName, "sasl-oauthbearer-unsecured-scope-claim-name", o.UnsecuredScopeClaimName, "claim holding the scope of unsecured tokens (unsecuredValidatorScopeClaimName)")
	f.StringSliceVar(&o.UnsecuredRequiredScope, "sasl-oauthbearer-unsecured-required-scope", o.UnsecuredRequiredScope, "scopes an unsecured token must hold (unsecuredValidatorRequiredScope)")
	f.Var(unitDuration{&o.UnsecuredClockSkew, time.Millisecond}, "sasl-oauthbearer-unsecured-clock-skew-ms", "clock difference allowed when checking unsecured tokens (unsecuredValidatorAllowableClockSkewMs)")
	f.StringVar(&cfg.TLS.CertFile, "ssl-cert-file", cfg.TLS.CertFile, "PEM certificate (chain) of SSL and SASL_SSL listeners")
	f.StringVar(&cfg.TLS.KeyFile, "ssl-key-file", cfg.TLS.KeyFile, "PEM private key of --ssl-cert-file")
	f.StringVar(&cfg.TLS.ClientCAFile, "ssl-client-ca-file", cfg.TLS.ClientCAFile, "PEM CA certificates that client certificates are verified against")
	f.StringVar(&cfg.TLS.ClientAuth, "ssl-client-auth", "none", "client certificates on TLS listeners: none|requested|required (ssl.client.auth)")
	f.Var(scramUsersValue{&cfg.SCRAMUsers}, "add-scram", "SCRAM credential created at start if the user has none for the mechanism, e.g. 'SCRAM-SHA-256=[name=admin,password=admin-secret]' (repeatable; kafka-storage format --add-scram syntax)")
	f.Int32Var(&cfg.NodeID, "node-id", cfg.NodeID, "broker and raft node id")
	f.StringVar(&cfg.Rack, "broker-rack", cfg.Rack, "rack (availability zone) of this broker (broker.rack); replicas spread over racks")
	f.StringVar(&cfg.ReplicaSelectorClass, "replica-selector-class", cfg.ReplicaSelectorClass, "replica.selector.class: empty keeps consumers on leaders; "+broker.RackAwareSelector+" lets consumers naming a rack fetch from an in-sync replica there (KIP-392)")
	f.StringVar(&cfg.RaftListen, "raft-listen", cfg.RaftListen, "HOST:PORT of the raft transport (default with --controller-quorum-voters: this node's entry)")
	f.Var(votersValue{&cfg.Voters}, "controller-quorum-voters", "static raft voters of a multi-node cluster, ID@HOST:PORT,... with each node's raft address (controller.quorum.voters); must list --node-id. Empty: a one-node cluster")
	f.Var(rolesValue{&cfg.BrokerOnly}, "process-roles", "broker,controller: a raft voter listed in --controller-quorum-voters; broker: a broker that joins those voters as a raft non-voter, with its own --raft-listen (process.roles)")
	f.StringVar(&cfg.RaftTLSCertFile, "raft-tls-cert-file", cfg.RaftTLSCertFile, "PEM certificate of this node on the raft port; with --raft-tls-key-file and --raft-tls-ca-file the raft port is mutual TLS (default: plain TCP, for a trusted network only)")
	f.StringVar(&cfg.RaftTLSKeyFile, "raft-tls-key-file", cfg.RaftTLSKeyFile, "PEM private key of --raft-tls-cert-file")
	f.StringVar(&cfg.RaftTLSCAFile, "raft-tls-ca-file", cfg.RaftTLSCAFile, "PEM CA certificate(s) that sign every node's raft certificate")
	f.DurationVar(&cfg.BrokerSessionTimeout, "broker-session-timeout", cfg.BrokerSessionTimeout, "the controller fences a broker it has not heard from for this long (broker.session.timeout.ms)")
	f.BoolVar(&cfg.AutoLeaderRebalance, "auto-leader-rebalance", cfg.AutoLeaderRebalance, "the controller moves leaderships back to preferred replicas periodically (auto.leader.rebalance.enable)")
	f.DurationVar(&cfg.LeaderImbalanceCheckInterval, "leader-imbalance-check-interval", cfg.LeaderImbalanceCheckInterval, "how often the controller checks leader balance (leader.imbalance.check.interval.seconds)")
	f.IntVar(&cfg.LeaderImbalancePerBrokerPercentage, "leader-imbalance-per-broker-percentage", cfg.LeaderImbalancePerBrokerPercentage, "share of a broker's preferred partitions it may not lead before balancing acts (leader.imbalance.per.broker.percentage)")
	f.Int32Var(&cfg.DefaultPartitions, "default-partitions", cfg.DefaultPartitions, "partitions of auto-created topics (num.partitions)")
	f.Int16Var(&cfg.DefaultReplicationFactor, "default-replication-factor", cfg.DefaultReplicationFactor, "replication factor of auto-created topics")
	f.BoolVar(&cfg.AutoCreateTopics, "auto-create-topics", cfg.AutoCreateTopics, "create unknown topics named in metadata requests (auto.create.topics.enable)")
	f.StringVar(&cfg.Fsync, "fsync", cfg.Fsync, "flush policy of partition logs: always|interval|never")
	f.IntVar(&cfg.SocketSendBufferBytes, "socket-send-buffer-bytes", cfg.SocketSendBufferBytes, "SO_SNDBUF of client and replica connections, -1 for the OS default (socket.send.buffer.bytes); raise it for links with a large bandwidth-delay product")
	f.IntVar(&cfg.SocketReceiveBufferBytes, "socket-receive-buffer-bytes", cfg.SocketReceiveBufferBytes, "SO_RCVBUF of client and replica connections, -1 for the OS default (socket.receive.buffer.bytes)")
	f.IntVar(&cfg.QuotaWindowSamples, "quota-window-num", cfg.QuotaWindowSamples, "samples client quota rates are measured over (quota.window.num)")
	f.DurationVar(&cfg.QuotaWindowSize, "quota-window-size", cfg.QuotaWindowSize, "length of one client quota sample (quota.window.size.seconds)")
	f.DurationVar(&cfg.ReplicaLagTimeMax, "replica-lag-time-max", cfg.ReplicaLagTimeMax, "a follower not caught up with its leader for this long leaves the ISR (replica.lag.time.max.ms)")
	f.DurationVar(&cfg.GroupInitialRebalanceDelay, "group-initial-rebalance-delay", cfg.GroupInitialRebalanceDelay, "wait for more members before the first rebalance of an empty group (group.initial.rebalance.delay.ms)")
	f.DurationVar(&cfg.GroupMinSessionTimeout, "group-min-session-timeout", cfg.GroupMinSessionTimeout, "smallest session timeout a classic group member may ask for (group.min.session.timeout.ms)")
	f.DurationVar(&cfg.GroupMaxSessionTimeout, "group-max-session-timeout", cfg.GroupMaxSessionTimeout, "largest session timeout a classic group member may ask for (group.max.session.timeout.ms)")
	f.DurationVar(&cfg.ConsumerGroupSessionTimeout, "consumer-group-session-timeout", cfg.ConsumerGroupSessionTimeout, "session timeout of KIP-848 consumer group members (group.consumer.session.timeout.ms)")
	f.DurationVar(&cfg.ConsumerGroupHeartbeatInterval, "consumer-group-heartbeat-interval", cfg.ConsumerGroupHeartbeatInterval, "heartbeat interval of KIP-848 consumer group members (group.consumer.heartbeat.interval.ms)")
	f.Int32Var(&cfg.OffsetsTopicPartitions, "offsets-topic-partitions", cfg.OffsetsTopicPartitions, "partitions of __consumer_offsets when it is created (offsets.topic.num.partitions)")
	f.DurationVar(&cfg.OffsetsRetention, "offsets-retention", cfg.OffsetsRetention, "how long committed offsets of empty groups are kept (offsets.retention.minutes)")
	f.Int32Var(&cfg.TransactionTopicPartitions, "transaction-topic-partitions", cfg.TransactionTopicPartitions, "partitions of __transaction_state when it is created (transaction.state.log.num.partitions)")
	f.DurationVar(&cfg.TransactionMaxTimeout, "transaction-max-timeout", cfg.TransactionMaxTimeout, "largest transaction timeout a producer may ask for (transaction.max.timeout.ms)")
	f.DurationVar(&cfg.TransactionAbortCheckInterval, "transaction-abort-check-interval", cfg.TransactionAbortCheckInterval, "how often timed out transactions are aborted (transaction.abort.timed.out.transaction.cleanup.interval.ms)")
	f.BoolVar(&cfg.Authorizer, "authorizer", cfg.Authorizer, "check Kafka ACLs on every request (Kafka's StandardAuthorizer); off, everything is allowed and the ACL APIs answer SECURITY_DISABLED")
	f.Var(superUsersValue{&cfg.SuperUsers}, "super-users", "principals allowed everything with --authorizer, semicolon-separated: 'User:admin;User:broker' (super.users)")
	f.BoolVar(&cfg.AllowEveryoneIfNoACLFound, "allow-everyone-if-no-acl-found", cfg.AllowEveryoneIfNoACLFound, "with --authorizer, allow everyone on resources that have no ACL at all (allow.everyone.if.no.acl.found)")
	f.DurationVar(&cfg.TransactionalIDExpiration, "transactional-id-expiration", cfg.TransactionalIDExpiration, "how long an idle transactional id is remembered (transactional.id.expiration.ms)")
}

// serveDebug serves net/http/pprof on addr until the returned stop function is called, and returns
// the bound address. It has its own mux, so nothing else registered on http.DefaultServeMux is exposed;
// the listener is bound before serveDebug returns, so a bad address fails the start instead of being
// logged later.
func serveDebug(addr string, logger *slog.Logger) (bound string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("--debug-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("debug listener stopped", "addr", addr, "err", err)
		}
	}()
	logger.Info("debug listener", "addr", ln.Addr().String())
	return ln.Addr().String(), func() {
		_ = srv.Close()
		<-done
	}, nil
}

// applyConfigSources sets every flag not given on the command line from the
// STROM_* environment, else from the config file, marking it Changed.
func applyConfigSources(fs *pflag.FlagSet, configFile string) error {
	if configFile == "" {
		configFile = os.Getenv("STROM_CONFIG")
	}
	fileVals := map[string]string{}
	if configFile != "" {
		var err error
		if fileVals, err = readConfigFile(configFile); err != nil {
			return err
		}
		for k := range fileVals {
			if fs.Lookup(k) == nil || k == "config" {
				return fmt.Errorf("config file %s: unknown key %q", configFile, k)
			}
		}
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" {
			return
		}
		env := "STROM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(env)
		src := env
		if !ok {
			v, ok = fileVals[f.Name]
			src = configFile
		}
		if !ok {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s=%q: %w", src, f.Name, v, err))
			return
		}
		f.Changed = true // given, like a command-line flag
	})
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// finishServeConfig derives what depends on several flags and validates
// the result: with --controller-quorum-voters and no --raft-listen the raft
// transport listens on this node's voter address.
func finishServeConfig(fs *pflag.FlagSet, cfg *broker.Config) error {
	if err := finishListeners(fs, cfg); err != nil {
		return fmt.Errorf("strom serve: %w", err)
	}
	if cfg.BrokerOnly && !fs.Changed("raft-listen") {
		return fmt.Errorf("strom serve: a broker-only node (--process-roles broker) needs --raft-listen: it has no entry in --controller-quorum-voters")
	}
	if len(cfg.Voters) > 0 && !fs.Changed("raft-listen") {
		for _, v := range cfg.Voters {
			if v.ID == cfg.NodeID {
				cfg.RaftListen = v.Addr
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("strom serve: %w", err)
	}
	return nil
}

// finishListeners maps --listeners, --listener-security-protocol-map and
// --advertised-listeners onto cfg.Listeners. Without --listeners, --listen
// and --advertise name the one PLAINTEXT listener.
func finishListeners(fs *pflag.FlagSet, cfg *broker.Config) error {
	listeners, _ := fs.GetString("listeners")
	protoMap, _ := fs.GetString("listener-security-protocol-map")
	advertised, _ := fs.GetString("advertised-listeners")
	if listeners == "" {
		if protoMap == "" && advertised == "" {
			return nil
		}
		listeners = "PLAINTEXT://" + cfg.Listen
	} else if fs.Changed("listen") || fs.Changed("advertise") {
		return errors.New("--listen and --advertise cannot be combined with --listeners (use --advertised-listeners)")
	}
	ls, err := broker.ParseListeners(listeners, protoMap, advertised)
	if err != nil {
		return err
	}
	cfg.Listeners = ls
	return nil
}

// scramUsersValue is the pflag.Value of --add-scram: every use adds one
// credential.
type scramUsersValue struct{ v *[]broker.SCRAMUser }

func (f scramUsersValue) String() string {
	if f.v == nil {
		return ""
	}
	var out []string
	for _, u := range *f.v {
		out = append(out, u.String())
	}
	return strings.Join(out, " ")
}

func (f scramUsersValue) Set(s string) error {
	u, err := broker.ParseSCRAMUser(s)
	if err != nil {
		return err
	}
	*f.v = append(*f.v, u)
	return nil
}

func (scramUsersValue) Type() string { return "scram" }

// rolesValue is the pflag.Value of --process-roles: Kafka's list of
// broker and controller. A controller-only node is not supported, since
// every Strom voter also serves clients.
type rolesValue struct{ brokerOnly *bool }

func (f rolesValue) String() string {
	if f.brokerOnly != nil && *f.brokerOnly {
		return "broker"
	}
	return "broker,controller"
}

func (f rolesValue) Set(s string) error {
	roles := map[string]bool{}
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if r != "broker" && r != "controller" {
			return fmt.Errorf("role %q is not broker or controller", r)
		}
		roles[r] = true
	}
	if !roles["broker"] {
		return fmt.Errorf("%q: a controller-only node is not supported; every voter is also a broker", s)
	}
	*f.brokerOnly = !roles["controller"]
	return nil
}

func (rolesValue) Type() string { return "roles" }

// votersValue is the pflag.Value of --controller-quorum-voters.
type votersValue struct{ v *[]raft.Voter }

func (f votersValue) String() string {
	if f.v == nil {
		return ""
	}
	return raft.FormatVoters(*f.v)
}

func (f votersValue) Set(s string) error {
	vs, err := raft.ParseVoters(s)
	if err != nil {
		return err
	}
	*f.v = vs
	return nil
}

func (votersValue) Type() string { return "voters" }

// superUsersValue is the pflag.Value of --super-users.
type superUsersValue struct{ v *[]string }

func (f superUsersValue) String() string {
	if f.v == nil {
		return ""
	}
	return strings.Join(*f.v, ";")
}

func (f superUsersValue) Set(s string) error {
	*f.v = broker.ParseSuperUsers(s)
	return nil
}

func (superUsersValue) Type() string { return "principals" }

// readConfigFile parses key=value lines; blank lines and # comments are
// skipped.
func readConfigFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open config file: %w", err)
	}
	defer f.Close()
	vals := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("config file %s line %d: want key=value", path, n)
		}
		vals[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read config file %s: %w", path, err)
	}
	return vals, nil
}

// readyMarker starts the broker's one ready line, which harnesses wait for.
const readyMarker = "strom ready listen="

// readyAlways returns a text handler at level min that still lets the ready
// line through when min is above info, so waiting for it works at any
// --log-level.
func readyAlways(w io.Writer, min slog.Level) slog.Handler {
	inner := slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})
	return readyGate{Handler: inner, min: min}
}

// readyGate filters records below min except the ready line.
type readyGate struct {
	slog.Handler
	min slog.Level
}

func (h readyGate) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.min || l == slog.LevelInfo
}

func (h readyGate) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.min && !strings.HasPrefix(r.Message, readyMarker) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h readyGate) WithAttrs(as []slog.Attr) slog.Handler {
	return readyGate{Handler: h.Handler.WithAttrs(as), min: h.min}
}

func (h readyGate) WithGroup(name string) slog.Handler {
	return readyGate{Handler: h.Handler.WithGroup(name), min: h.min}
}

// unitDuration is a flag holding a whole number of unit, Kafka's way of
// writing durations (connections.max.reauth.ms, ...clock.skew.seconds).
type unitDuration struct {
	d    *time.Duration
	unit time.Duration
}

func (u unitDuration) String() string {
	if u.d == nil {
		return "0"
	}
	return strconv.FormatInt(int64(*u.d/u.unit), 10)
}

func (u unitDuration) Set(s string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return fmt.Errorf("not a whole number: %q", s)
	}
	if n < 0 || n > int64(math.MaxInt64/u.unit) {
		return fmt.Errorf("%d out of range", n)
	}
	*u.d = time.Duration(n) * u.unit
	return nil
}

func (u unitDuration) Type() string { return "int" }
