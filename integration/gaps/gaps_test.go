package gaps

import (
	"fmt"
	"testing"
)

// spyTB records what Check reports instead of failing the real test.
type spyTB struct {
	testing.TB
	errors, logs int
}

func (s *spyTB) Helper()                   {}
func (s *spyTB) Errorf(string, ...any)     { s.errors++ }
func (s *spyTB) Logf(string, ...any)       { s.logs++ }
func (s *spyTB) Error(...any)              { s.errors++ }
func (s *spyTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (s *spyTB) Name() string              { return "spy" }

func TestCheckIsStrict(t *testing.T) {
	known["test/listed"] = Gap{Reason: "for this test"}
	defer delete(known, "test/listed")
	for _, tc := range []struct {
		name           string
		failed         bool
		errors, logged int
	}{
		{"test/unlisted", false, 0, 0},
		{"test/unlisted", true, 1, 0},
		{"test/listed", true, 0, 1},
		{"test/listed", false, 1, 0}, // closed gap: the entry must go
	} {
		s := &spyTB{TB: t}
		Check(s, tc.name, tc.failed, "detail")
		if s.errors != tc.errors || s.logs != tc.logged {
			t.Errorf("Check(%s, failed=%v): %d errors, %d logs; want %d, %d", tc.name, tc.failed, s.errors, s.logs,
				tc.errors, tc.logged)
		}
	}
}

func TestRecorderStopsBodyOnFatal(t *testing.T) {
	r := &recorder{TB: t}
	reached := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Errorf("first %d", 1)
		r.Fatal("second")
		reached = true
	}()
	<-done
	msgs, failed := r.result()
	if !failed || reached || len(msgs) != 2 || msgs[0] != "first 1" || msgs[1] != "second" {
		t.Fatalf("recorder: failed=%v reached=%v msgs=%q", failed, reached, msgs)
	}
}

func TestRunUnlistedRunsBodyDirectly(t *testing.T) {
	ran := false
	Run(t, func(tb testing.TB) {
		if tb != testing.TB(t) {
			t.Errorf("unlisted test got a recorder, want the real test")
		}
		ran = true
	})
	if !ran {
		t.Fatal("body did not run")
	}
}

func TestListedGapsHaveReasons(t *testing.T) {
	for _, n := range Names() {
		if g, _ := Lookup(n); len(g.Reason) < 20 {
			t.Errorf("gap %q: reason %q is too short to review", n, g.Reason)
		}
	}
}
