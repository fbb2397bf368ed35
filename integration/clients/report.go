package clients

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// reportLine is one line a script runner prints on stdout:
// {"feature": "produce-gzip", "result": "pass"|"fail"|"n/a", "detail": "..."}.
type reportLine struct {
	Feature string `json:"feature"`
	Result  string `json:"result"`
	Detail  string `json:"detail"`
}

// maxReportLine bounds one result line; details are short, a longer line is a broken script.
const maxReportLine = 64 << 10

// parseReport decodes a script's stdout: one JSON object per line, blank lines ignored. Every other line,
// an unknown feature or an unknown result is an ErrBadReport (scripts log to stderr, never to stdout).
// The results are in the order printed.
func parseReport(client string, r io.Reader) ([]Result, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxReportLine)
	var out []Result
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var l reportLine
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return out, fmt.Errorf("%w: line %d %q: %v", ErrBadReport, n, shorten(string(line)), err)
		}
		if dec.More() {
			return out, fmt.Errorf("%w: line %d: trailing data after the object", ErrBadReport, n)
		}
		if !slices.Contains(Features(), l.Feature) {
			return out, fmt.Errorf("%w: line %d: unknown feature %q", ErrBadReport, n, l.Feature)
		}
		o := Outcome(l.Result)
		if o != Pass && o != Fail && o != NA {
			return out, fmt.Errorf("%w: line %d: unknown result %q", ErrBadReport, n, l.Result)
		}
		out = append(out, Result{Client: client, Feature: l.Feature, Outcome: o, Detail: l.Detail})
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("%w: %v", ErrBadReport, err)
	}
	return out, nil
}
