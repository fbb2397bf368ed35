package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// Pool shares clusters among the tests of one package, so a JVM that takes seconds to start is started
// once per `go test` binary instead of once per test. Use one package-level Pool and close it from
// TestMain after m.Run:
//
//	var pool harness.Pool
//	func TestMain(m *testing.M) { code := m.Run(); pool.Close(); os.Exit(code) }
//
// Clusters are started lazily by the first test asking for a key; a start failure is remembered and
// fails every test asking for that key. Tests sharing a cluster must not Stop it, and tests that Kill or
// Restart nodes should use their own key (or StartKafka) so others never see a half-dead cluster.
type Pool struct {
	mu      sync.Mutex // guards entries
	entries map[string]*poolEntry
}

type poolEntry struct {
	once sync.Once
	c    *LocalCluster
	dir  string
	err  error
}

// Kafka returns the pool's Kafka cluster named key, starting it with opts on first use.
func (p *Pool) Kafka(t testing.TB, key string, opts ...Option) *LocalCluster {
	t.Helper()
	return p.get(t, "kafka/"+key, NewKafka, opts)
}

// Strom returns the pool's Strom cluster named key, starting it with opts on first use. A Strom that
// cannot start fails the test with "strom serve not available: ...".
func (p *Pool) Strom(t testing.TB, key string, opts ...Option) *LocalCluster {
	t.Helper()
	return p.get(t, "strom/"+key, NewStrom, opts)
}

type starter func(ctx context.Context, dir string, opts ...Option) (*LocalCluster, error)

func (p *Pool) get(t testing.TB, key string, start starter, opts []Option) *LocalCluster {
	t.Helper()
	p.mu.Lock()
	if p.entries == nil {
		p.entries = map[string]*poolEntry{}
	}
	e := p.entries[key]
	if e == nil {
		e = &poolEntry{}
		p.entries[key] = e
	}
	p.mu.Unlock()
	e.once.Do(func() {
		e.dir, e.err = os.MkdirTemp("", "strom-harness-*")
		if e.err != nil {
			return
		}
		e.c, e.err = start(context.Background(), e.dir, opts...)
	})
	if e.err != nil {
		t.Fatalf("cluster %s: %v", key, e.err)
	}
	c := e.c
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s logs:\n%s", c.Kind(), c.TailLogs(40))
		}
	})
	return c
}

// Close stops every cluster the pool started and removes their folders (a start failure already
// reported the logs' tails to the tests that asked for it).
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for key, e := range p.entries {
		if e.c != nil {
			if err := e.c.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop %s: %w", key, err))
			}
		}
		if e.dir == "" {
			continue
		}
		if err := os.RemoveAll(e.dir); err != nil {
			errs = append(errs, err)
		}
	}
	p.entries = nil
	return errors.Join(errs...)
}
