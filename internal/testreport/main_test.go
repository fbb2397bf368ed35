package main

import (
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	const pkg = "github.com/stromhq/strom/integration"
	for _, tc := range []struct {
		name   string
		in     string
		want   []string // substrings, in this order
		absent []string
	}{
		{
			name: "passing output is dropped, package line kept",
			in: `{"Action":"run","Package":"` + pkg + `","Test":"TestA"}
{"Action":"output","Package":"` + pkg + `","Test":"TestA","Output":"a log line\n"}
{"Action":"pass","Package":"` + pkg + `","Test":"TestA","Elapsed":2.5}
{"Action":"output","Package":"` + pkg + `","Output":"ok  \t` + pkg + `\t2.6s\n"}
`,
			want:   []string{"ok  \t" + pkg, "slowest of 1 top-level tests", "2.5s  pass  integration TestA"},
			absent: []string{"a log line"},
		},
		{
			name: "failed subtest and parent print their output",
			in: `{"Action":"run","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Test":"TestB","Output":"parent line\n"}
{"Action":"run","Package":"p","Test":"TestB/sub"}
{"Action":"output","Package":"p","Test":"TestB/sub","Output":"sub broke\n"}
{"Action":"fail","Package":"p","Test":"TestB/sub","Elapsed":1}
{"Action":"fail","Package":"p","Test":"TestB","Elapsed":1.5}
`,
			want: []string{"sub broke", "parent line", "1.5s  fail  p TestB"},
		},
		{
			name: "an unfinished test's output is printed at the end",
			in: `{"Action":"run","Package":"p","Test":"TestSlow"}
{"Action":"output","Package":"p","Test":"TestSlow","Output":"waiting on the broker\n"}
{"Action":"run","Package":"p","Test":"TestFast"}
{"Action":"pass","Package":"p","Test":"TestFast","Elapsed":0.1}
{"Action":"output","Package":"p","Output":"panic: test timed out after 1m0s\n"}
{"Action":"fail","Package":"p","Elapsed":60}
`,
			want: []string{"panic: test timed out", "--- UNFINISHED: p TestSlow", "waiting on the broker", "0.1s  pass  p TestFast"},
		},
		{
			name: "lines that are not JSON pass through",
			in:   "# build failed\n{\"Action\":\"build-output\",\"ImportPath\":\"x\",\"Output\":\"x.go:1: bad\\n\"}\n",
			want: []string{"# build failed", "x.go:1: bad"},
		},
		{
			name: "the slowest come first",
			in: `{"Action":"pass","Package":"p","Test":"TestShort","Elapsed":1}
{"Action":"skip","Package":"p","Test":"TestLong","Elapsed":9}
{"Action":"pass","Package":"p","Test":"TestLong/sub","Elapsed":8}
`,
			want:   []string{"slowest of 2 top-level tests, by wall time with their subtests (10 s summed", "9.0s  skip  p TestLong", "1.0s  pass  p TestShort"},
			absent: []string{"TestLong/sub"},
		},
		{
			name: "wall time counts parallel subtests and leaves out a parallel test's pause",
			in: `{"Time":"2026-11-28T04:00:00Z","Action":"run","Package":"p","Test":"TestParent"}
{"Time":"2026-11-28T04:00:00Z","Action":"run","Package":"p","Test":"TestPar"}
{"Time":"2026-11-28T04:00:00.1Z","Action":"pause","Package":"p","Test":"TestPar"}
{"Time":"2026-11-28T04:00:00Z","Action":"run","Package":"p","Test":"TestParent/a"}
{"Time":"2026-11-28T04:00:30Z","Action":"pass","Package":"p","Test":"TestParent/a","Elapsed":30}
{"Time":"2026-11-28T04:00:30Z","Action":"pass","Package":"p","Test":"TestParent","Elapsed":0.04}
{"Time":"2026-11-28T04:00:30Z","Action":"cont","Package":"p","Test":"TestPar"}
{"Time":"2026-11-28T04:00:32Z","Action":"pass","Package":"p","Test":"TestPar","Elapsed":2}
`,
			want: []string{"30.0s  pass  p TestParent", "2.0s  pass  p TestPar"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			r := newReport(&out)
			if err := r.read(strings.NewReader(tc.in)); err != nil {
				t.Fatal(err)
			}
			r.finish()
			got := out.String()
			rest := got
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("missing %q (in order) in:\n%s", w, got)
				}
				rest = rest[i+len(w):]
			}
			for _, a := range tc.absent {
				if strings.Contains(got, a) {
					t.Errorf("unexpected %q in:\n%s", a, got)
				}
			}
		})
	}
}
