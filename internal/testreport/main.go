// Command testreport runs `go test -json` with the arguments it is given and prints what plain
// `go test` would (package results, the output of failed tests), plus two things plain `go test`
// leaves out: the output of tests that never finished (a timeout panic otherwise shows only their
// names), and the slowest top-level tests with their durations, so a CI log shows where the suite's
// time went. It exits with go test's status.
//
// Usage: go run ./internal/testreport [go test flags] packages
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// slowest is how many top-level tests the closing table lists.
const slowest = 15

func main() {
	cmd := exec.Command("go", append([]string{"test", "-json"}, os.Args[1:]...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testreport: go test:", err)
		os.Exit(2)
	}
	rep := newReport(os.Stdout)
	if err := rep.read(out); err != nil {
		fmt.Fprintln(os.Stderr, "testreport: reading go test output:", err)
	}
	err = cmd.Wait()
	rep.finish()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		os.Exit(exit.ExitCode())
	case err != nil:
		fmt.Fprintln(os.Stderr, "testreport: go test:", err)
		os.Exit(2)
	}
}

// event is one line of `go test -json` (cmd/test2json's TestEvent, plus the build events).
type event struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// timing is a finished top-level test. elapsed is the wall time from its start (or its resumption,
// for a parallel test) to its end: go test's own figure for a test leaves out its parallel subtests,
// which run after the test's function has returned.
type timing struct {
	pkg, test, action string
	elapsed           float64
}

// report turns a stream of events into plain go test output. Output of a running test is held
// until the test ends: printed if it failed, dropped if it passed or skipped.
type report struct {
	w       io.Writer
	held    map[string][]string  // package + " " + test -> output lines so far, in order
	order   []string             // keys of held in the order their tests started
	started map[string]time.Time // top-level key -> when it last started or resumed
	timings []timing
}

func newReport(w io.Writer) *report {
	return &report{w: w, held: map[string][]string{}, started: map[string]time.Time{}}
}

// read consumes events until r ends. Lines that are not JSON (go test's own messages) pass through.
func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Action == "" {
			fmt.Fprintln(r.w, sc.Text())
			continue
		}
		r.add(ev)
	}
	return sc.Err()
}

func (r *report) add(ev event) {
	if ev.Test == "" {
		// Package level: "ok"/"FAIL" lines, build output, a timeout panic. The bare "PASS" that
		// precedes "ok" is verbose mode's; plain go test does not print it.
		switch ev.Action {
		case "output", "build-output":
			if ev.Output != "PASS\n" {
				fmt.Fprint(r.w, ev.Output)
			}
		case "pass", "fail":
			r.flushUnfinished(ev.Package)
		}
		return
	}
	key := ev.Package + " " + ev.Test
	switch ev.Action {
	case "cont":
		if !strings.Contains(ev.Test, "/") {
			r.started[key] = ev.Time
		}
	case "run":
		if !strings.Contains(ev.Test, "/") {
			r.started[key] = ev.Time
		}
		if _, ok := r.held[key]; !ok {
			r.held[key] = nil
			r.order = append(r.order, key)
		}
	case "output":
		if _, ok := r.held[key]; !ok {
			r.order = append(r.order, key)
		}
		r.held[key] = append(r.held[key], ev.Output)
	case "pass", "skip", "fail":
		if ev.Action == "fail" {
			// A failed subtest prints under its own name; its parent's own lines follow when the
			// parent ends, as in plain go test.
			fmt.Fprint(r.w, strings.Join(r.held[key], ""))
		}
		delete(r.held, key)
		if !strings.Contains(ev.Test, "/") {
			elapsed := ev.Elapsed
			if start, ok := r.started[key]; ok && !start.IsZero() && !ev.Time.IsZero() {
				elapsed = max(elapsed, ev.Time.Sub(start).Seconds())
			}
			delete(r.started, key)
			r.timings = append(r.timings, timing{pkg: ev.Package, test: ev.Test, action: ev.Action, elapsed: elapsed})
		}
	}
}

// flushUnfinished prints the output of the tests of pkg (every package if "") that never ended:
// a package that ends with tests still running timed out or crashed, and go test names them only.
func (r *report) flushUnfinished(pkg string) {
	for _, key := range r.order {
		lines, ok := r.held[key]
		if !ok || (pkg != "" && !strings.HasPrefix(key, pkg+" ")) {
			continue
		}
		fmt.Fprintf(r.w, "--- UNFINISHED: %s\n%s", key, strings.Join(lines, ""))
		delete(r.held, key)
	}
}

// finish prints the output of every test that never ended, then the slowest top-level tests.
func (r *report) finish() {
	r.flushUnfinished("")
	if len(r.timings) == 0 {
		return
	}
	ts := slices.Clone(r.timings)
	slices.SortStableFunc(ts, func(a, b timing) int {
		switch {
		case a.elapsed > b.elapsed:
			return -1
		case a.elapsed < b.elapsed:
			return 1
		}
		return 0
	})
	total := 0.0
	for _, t := range r.timings {
		total += t.elapsed
	}
	fmt.Fprintf(r.w, "\nslowest of %d top-level tests, by wall time with their subtests (%.0f s summed; parallel tests overlap):\n", len(ts), total)
	for _, t := range ts[:min(slowest, len(ts))] {
		fmt.Fprintf(r.w, "%8.1fs  %-4s  %s %s\n", t.elapsed, t.action, shortPkg(t.pkg), t.test)
	}
}

// shortPkg drops the module path: the log names packages as the folder layout does.
func shortPkg(p string) string {
	if i := strings.Index(p, "/strom/"); i >= 0 {
		return p[i+len("/strom/"):]
	}
	return p
}
