package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestReplicateFlags checks that the replicator commands exist with their flags and reject bad input
// before connecting anywhere.
func TestReplicateFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the error, or in the output when no error is expected
		err  bool
	}{
		{[]string{"mirror", "--help"}, "--groups", false},
		{[]string{"migrate", "--help"}, "--from-config", false},
		{[]string{"verify", "--help"}, "--allow-duplicates", false},
		{[]string{"mirror", "--from", "127.0.0.1:1", "--to", "127.0.0.1:1", "--topics", "t", "--mode", "twice"}, "mode \"twice\"", true},
		{[]string{"migrate", "--from", "127.0.0.1:1", "--to", "127.0.0.1:1"}, "--topics is required", true},
		{[]string{"verify", "--from", "127.0.0.1:1", "--to", "127.0.0.1:1", "--topics", "("}, "--topics \"(\"", true},
		{[]string{"migrate", "--from", "127.0.0.1:1", "--to", "127.0.0.1:1", "--topics", "t", "--rename", "upper"}, "--rename", true},
	}
	for _, tt := range tests {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(tt.args)
		err := root.Execute()
		switch {
		case tt.err && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%v: err %v, want one containing %q", tt.args, err, tt.want)
		case !tt.err && (err != nil || !strings.Contains(out.String(), tt.want)):
			t.Errorf("%v: err %v, output lacks %q:\n%s", tt.args, err, tt.want, out.String())
		}
	}
}
