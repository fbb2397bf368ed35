package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stromhq/strom/raft"
)

// Broker is one running Strom broker: a Kafka listener plus the partitions it
// hosts. Create it with Start; stop it with Close.
type Broker struct {
	cfg Config
	log *slog.Logger

	// ctx is cancelled at the start of Close; deferred replies (long polls,
	// durability waits) watch it through their connection's context.
	ctx    context.Context
	cancel context.CancelFunc

	// listeners are the bound Kafka listeners, in configuration order;
	// immutable after Start. addr is the first one's bound address.
	listeners []*boundListener
	addr      string
	// peerTLS is the client TLS config of connections to other brokers'
	// inter-broker listener when it uses TLS; immutable after Start.
	peerTLS *tls.Config
	// authSecret keys the fake SCRAM credentials of unknown users
	// (sasl.go); random per process, immutable.
	authSecret [32]byte
	// oauth validates OAUTHBEARER tokens; nil unless the mechanism is
	// enabled. Immutable after Start; safe for concurrent use.
	oauth tokenValidator

	// connsMu guards conns and closed.
	connsMu  sync.Mutex
	conns    map[*conn]struct{}
	closed   bool
	connWG   sync.WaitGroup
	acceptWG sync.WaitGroup // the accept loop
	bgWG     sync.WaitGroup // background goroutines; stopped by cancel

	closeOnce sync.Once
	closeErr  error

	// node is the raft metadata node; parts the partitions hosted here.
	node        *raft.Node
	parts       *partitionManager
	unsubscribe func()
	// handlerPanics counts recovered handler panics (bugs); tests and fuzzing
	// require it to stay 0.
	handlerPanics atomic.Int64
	// pids is the producer-id block this broker hands out from.
	pids producerIDs
	// sessions caches incremental fetch sessions (KIP-227).
	sessions *fetchSessionCache
	// groups is the group coordinator (coordinator.go).
	groups *coordinator
	// txns is the transaction coordinator (txn_coordinator.go).
	txns *txnCoordinator
	// authz is the ACL policy fixed at start; the bindings themselves are
	// read from the raft state at each check.
	authz authzPolicy
	// aclIdx caches the ACL index of the latest raft state seen (acls).
	aclIdx atomic.Pointer[aclIndex]
	// staticConfigs are the broker configs fixed at start (flags).
	staticConfigs map[string]string
	// fetchers copy the partitions this broker follows from their leaders
	// (replica_fetcher.go).
	fetchers *fetcherManager
	// brokerEpoch is this broker's epoch from its RegisterBroker; set in
	// open, immutable after.
	brokerEpoch int64
	// lastHeartbeat is when the last heartbeat that reached the controller
	// was sent (UnixNano; 0: none yet). Written by heartbeatLoop, read by
	// mayLead.
	lastHeartbeat atomic.Int64
	// reauthentications counts successful KIP-368 re-authentications
	// (Kafka's successful-reauthentication metric); tests read it.
	reauthentications atomic.Int64
	// quotas enforces the client quotas of the raft state
	// (quota_enforce.go); immutable pointer, safe for concurrent use.
	quotas *quotaManager
	// replThrottle measures throttled replication against the replication
	// throttle rates (replication_throttle.go); safe for concurrent use.
	replThrottle *replThrottle
	// followerReads counts consumer fetch answers carrying records that
	// this broker served as a follower (KIP-392); tests read it to prove
	// where a consumer read.
	followerReads atomic.Int64
}

// Start opens the broker's state in cfg.DataDir, binds the listener, starts
// serving and logs the ready line. The broker runs until Close.
func Start(cfg Config) (*Broker, error) {
	return StartContext(context.Background(), cfg)
}

// StartContext is Start whose start-up (waiting for a raft quorum and for
// the controller to unfence this broker) ends early, with ctx's error, when
// ctx ends: `strom serve` passes its signal context, so SIGTERM stops a node
// that is still waiting for its peers. Once StartContext has returned, ctx no
// longer matters; stop the broker with Close.
func StartContext(startCtx context.Context, cfg Config) (*Broker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel, conns: map[*conn]struct{}{}, sessions: newFetchSessionCache(cfg.FetchSessionCacheSlots),
		authz: newAuthzPolicy(cfg), authSecret: newAuthSecret(), quotas: newQuotaManager(cfg.QuotaWindowSamples, cfg.QuotaWindowSize),
		replThrottle: newReplThrottle(cfg.NodeID, cfg.QuotaWindowSamples, cfg.QuotaWindowSize)}
	if err := b.bindListeners(); err != nil {
		cancel()
		return nil, err
	}
	b.addr = b.listeners[0].addr
	if err := b.startOAuth(); err != nil {
		b.closeListeners()
		cancel()
		return nil, err
	}
	stopWatch := context.AfterFunc(startCtx, cancel)
	err := b.open()
	if !stopWatch() && err == nil {
		// ctx ended as open returned: the broker's context is cancelled,
		// so it cannot run; undo the start.
		err = context.Cause(startCtx)
		b.closeListeners()
		b.fetchers.stopAll()
		b.bgWG.Wait()
		_ = b.closeState()
		return nil, fmt.Errorf("start cancelled: %w", err)
	}
	if err != nil {
		b.closeListeners()
		cancel()
		if startCtx.Err() != nil {
			return nil, fmt.Errorf("start cancelled: %w (%v)", context.Cause(startCtx), err)
		}
		return nil, err
	}
	if src, ok := b.oauthKeys(); ok {
		b.bgWG.Add(1)
		go func() {
			defer b.bgWG.Done()
			src.run(b.ctx)
		}()
	}
	for _, l := range b.listeners {
		b.acceptWG.Add(1)
		go b.acceptLoop(l)
	}
	b.log.Info("strom ready listen="+b.addr, "node_id", cfg.NodeID, "data_dir", cfg.DataDir, "listeners", b.listenerSummary())
	return b, nil
}

// Addr returns the bound address (HOST:PORT) of the first listener.
func (b *Broker) Addr() string { return b.addr }

// ListenerAddr returns the bound address of the named listener, or "".
func (b *Broker) ListenerAddr(name string) string {
	for _, l := range b.listeners {
		if l.Name == name {
			return l.addr
		}
	}
	return ""
}

// interBroker is the bound inter-broker listener.
func (b *Broker) interBroker() *boundListener {
	ib, _ := b.cfg.interBrokerListener() // validated in Start
	for _, l := range b.listeners {
		if l.Name == ib.Name {
			return l
		}
	}
	return b.listeners[0]
}

// endpoints lists every listener's advertised endpoint for the broker's
// registration.
func (b *Broker) endpoints() ([]raft.Endpoint, error) {
	out := make([]raft.Endpoint, 0, len(b.listeners))
	for _, l := range b.listeners {
		host, port, err := splitHostPort(l.advertised())
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", l.Name, err)
		}
		out = append(out, raft.Endpoint{Name: l.Name, Host: host, Port: port})
	}
	return out, nil
}

// listenerName is the name of the listener a connection came in on ("" for
// connections without one, which then see every broker's Host and Port).
func (c *conn) listenerName() string {
	if c.listener == nil {
		return ""
	}
	return c.listener.Name
}

// brokerEndpoint is where a client on listener reaches broker br: its
// endpoint for that listener, or ok false when br has no such listener
// (Kafka leaves such brokers out of its answers).
func brokerEndpoint(br raft.Broker, listener string) (host string, port int32, ok bool) {
	if listener == "" {
		return br.Host, br.Port, true
	}
	return br.Endpoint(listener)
}

// bindListeners binds every configured listener; on failure none stays
// bound.
func (b *Broker) bindListeners() error {
	var serverTLS *tls.Config
	for _, l := range b.cfg.listeners() {
		bl := &boundListener{Listener: l}
		if l.Protocol.usesTLS() {
			if serverTLS == nil {
				var err error
				if serverTLS, err = b.cfg.TLS.serverTLS(); err != nil {
					b.closeListeners()
					return err
				}
			}
			bl.tls = serverTLS
		}
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			b.closeListeners()
			return fmt.Errorf("listener %s: listen on %s: %w", l.Name, l.Addr, err)
		}
		bl.ln = ln
		bl.addr = ln.Addr().String()
		b.listeners = append(b.listeners, bl)
	}
	if b.interBroker().Protocol.usesTLS() {
		var err error
		if b.peerTLS, err = b.cfg.TLS.clientTLS(); err != nil {
			b.closeListeners()
			return err
		}
	}
	return nil
}

// closeListeners stops accepting on every listener.
func (b *Broker) closeListeners() {
	for _, l := range b.listeners {
		_ = l.ln.Close()
	}
}

// listenerSummary lists the listeners for the ready line.
func (b *Broker) listenerSummary() string {
	var parts []string
	for _, l := range b.listeners {
		parts = append(parts, l.Name+"://"+l.addr)
	}
	return strings.Join(parts, ",")
}

// acceptLoop accepts connections on l until it is closed.
func (b *Broker) acceptLoop(l *boundListener) {
	defer b.acceptWG.Done()
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			b.log.Warn("accept failed", "err", err)
			time.Sleep(50 * time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tuneSocket(tc, b.cfg.SocketSendBufferBytes, b.cfg.SocketReceiveBufferBytes)
		}
		if l.tls != nil {
			nc = tls.Server(nc, l.tls)
		}
		c := newConn(b, nc, l)
		b.connsMu.Lock()
		if b.closed {
			b.connsMu.Unlock()
			_ = nc.Close()
			return
		}
		b.conns[c] = struct{}{}
		b.connWG.Add(1)
		b.connsMu.Unlock()
		go func() {
			defer b.connWG.Done()
			c.serve()
			b.connsMu.Lock()
			delete(b.conns, c)
			b.connsMu.Unlock()
		}()
	}
}

// Close first asks the controller to move this broker's partition leaderships
// elsewhere (multi-node clusters; see controlledShutdown), then stops
// accepting connections, lets every connection finish the requests
// it has read (answering long polls at once), then syncs and closes the
// partition logs and the raft node. It is safe to call more than once.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.controlledShutdown()
		if b.parts != nil {
			// Apply the leadership moves now: acks=all writes waiting on
			// partitions this broker no longer leads answer
			// errUnconfirmedAppend (the client retries on the new
			// leader) instead of holding the shutdown until they time out;
			// the subscription that would do it stops with the context.
			b.parts.reconcile()
		}
		b.closeListeners()
		b.acceptWG.Wait()
		b.connsMu.Lock()
		b.closed = true
		for c := range b.conns {
			c.shutdown()
		}
		b.connsMu.Unlock()
		b.cancel()
		done := make(chan struct{})
		go func() { b.connWG.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(b.cfg.ShutdownTimeout):
			b.log.Warn("shutdown: connections still busy, closing them")
			b.connsMu.Lock()
			for c := range b.conns {
				_ = c.nc.Close()
			}
			b.connsMu.Unlock()
			<-done
		}
		b.fetchers.stopAll()
		b.bgWG.Wait()
		b.closeErr = b.closeState()
		b.log.Info("strom stopped", "listen", b.addr)
	})
	return b.closeErr
}

// tuneSocket sets an accepted connection's options: no Nagle delay (every
// response is one write or a header and sendfile runs), and the send and
// receive buffer sizes when positive (-1 leaves the kernel's autotuning).
// Failures are ignored: the connection works with the defaults.
func tuneSocket(tc *net.TCPConn, send, recv int) {
	_ = tc.SetNoDelay(true)
	if send > 0 {
		_ = tc.SetWriteBuffer(send)
	}
	if recv > 0 {
		_ = tc.SetReadBuffer(recv)
	}
}
