// Package gaps is the one reviewed list of places where Strom is known to fail a scenario that Apache
// Kafka passes, each with its reason, and the test helpers that turn a listed gap into a strict expected
// failure.
//
// Strict means both directions are checked: a listed scenario that fails is logged loudly as a known gap
// (the test passes, so main stays green while the feature is missing), and a listed scenario that passes
// fails the test until its entry is deleted, so the list can only shrink and never hides a regression.
// A scenario that is not listed must pass. Nothing here skips a test.
package gaps

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Gap is one known difference between Strom and Apache Kafka.
type Gap struct {
	// Reason says what is missing and which issue or design section will close it.
	Reason string
}

// known maps a scenario name to its gap. Test scenarios use the Go test name ("TestKillRestart/strom");
// client-matrix cells use "matrix/<cluster>/<client>/<feature>".
//
// Review rule: add an entry only with a reason a user would accept, and delete it in the commit that
// closes the gap (the strict check forces that).
var known = map[string]Gap{}

// Lookup reports the gap listed for name, if any.
func Lookup(name string) (Gap, bool) {
	g, ok := known[name]
	return g, ok
}

// Names lists every known gap, sorted, for reports.
func Names() []string {
	names := make([]string, 0, len(known))
	for n := range known {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Run runs body as the test t. When t's name is not a known gap this is simply body(t). When it is, body
// runs against a recorder: its failures are logged as the expected ones, and a body that passes fails t
// because the gap is closed and its entry must be removed. body must not start subtests (testing.TB has
// no Run); cleanups it registers still run on t.
func Run(t *testing.T, body func(t testing.TB)) {
	t.Helper()
	g, ok := known[t.Name()]
	if !ok {
		body(t)
		return
	}
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(r)
	}()
	<-done
	if msgs, failed := r.result(); failed {
		t.Logf("KNOWN GAP (expected failure): %s\n  reason: %s\n  failures:\n    %s", t.Name(), g.Reason,
			strings.Join(msgs, "\n    "))
		return
	}
	t.Errorf("known gap %q now passes: delete its entry from integration/gaps (reason was: %s)", t.Name(), g.Reason)
}

// Check applies the strict rule to an outcome computed elsewhere (a client-matrix cell): failed is
// whether the scenario failed, detail what it reported.
func Check(t testing.TB, name string, failed bool, detail string) {
	t.Helper()
	g, ok := known[name]
	switch {
	case !ok && failed:
		t.Errorf("%s failed: %s", name, detail)
	case ok && failed:
		t.Logf("KNOWN GAP (expected failure): %s: %s (reason: %s)", name, detail, g.Reason)
	case ok && !failed:
		t.Errorf("known gap %q now passes: delete its entry from integration/gaps (reason was: %s)", name, g.Reason)
	}
}

// recorder is the testing.TB a known-gap body runs against: failures are recorded instead of failing the
// real test; everything else (logging, cleanups, temp dirs, names) goes to the real one.
type recorder struct {
	testing.TB

	mu     sync.Mutex // guards msgs and failed
	msgs   []string
	failed bool
}

func (r *recorder) record(msg string) {
	r.mu.Lock()
	r.failed = true
	if msg != "" {
		r.msgs = append(r.msgs, msg)
	}
	r.mu.Unlock()
}

func (r *recorder) result() ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...), r.failed
}

func (r *recorder) Fail()                             { r.record("") }
func (r *recorder) Failed() bool                      { _, f := r.result(); return f }
func (r *recorder) Error(args ...any)                 { r.record(fmt.Sprint(args...)) }
func (r *recorder) Errorf(format string, args ...any) { r.record(fmt.Sprintf(format, args...)) }

// FailNow ends the body's goroutine, as testing.T's does; Run waits for that goroutine, not for the test.
func (r *recorder) FailNow()          { r.record(""); runtime.Goexit() }
func (r *recorder) Fatal(args ...any) { r.record(fmt.Sprint(args...)); runtime.Goexit() }
func (r *recorder) Fatalf(format string, args ...any) {
	r.record(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
