package raft

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseVoters(t *testing.T) {
	tests := []struct {
		in   string
		want []Voter
		ok   bool
	}{
		{"", nil, true},
		{"  ", nil, true},
		{"1@127.0.0.1:9093", []Voter{{1, "127.0.0.1:9093"}}, true},
		{"1@127.0.0.1:9093, 2@localhost:19093,3@[::1]:29093", []Voter{{1, "127.0.0.1:9093"}, {2, "localhost:19093"}, {3, "[::1]:29093"}}, true},
		{"0@h:1", []Voter{{0, "h:1"}}, true},
		{"127.0.0.1:9093", nil, false},            // no id
		{"x@127.0.0.1:9093", nil, false},          // id not a number
		{"-1@127.0.0.1:9093", nil, false},         // negative id
		{"4294967296@127.0.0.1:9093", nil, false}, // id beyond int32
		{"1@127.0.0.1", nil, false},               // no port
		{"1@:9093", nil, false},                   // no host
		{"1@h:0", nil, false},                     // port 0 is not dialable
		{"1@h:70000", nil, false},                 // port out of range
		{"1@h:p", nil, false},                     // port not numeric
		{"1@h:1,1@g:2", nil, false},               // duplicate id
		{"1@h:1,2@h:1", nil, false},               // duplicate address
		{"1@h:1,", nil, false},                    // empty entry
		{"1@h:1,,2@g:2", nil, false},              // empty entry inside
	}
	for _, tc := range tests {
		got, err := ParseVoters(tc.in)
		if tc.ok != (err == nil) || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseVoters(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidVoters) {
			t.Errorf("ParseVoters(%q): error %v does not wrap ErrInvalidVoters", tc.in, err)
		}
		if err == nil && len(got) > 0 {
			if again, err := ParseVoters(FormatVoters(got)); err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("FormatVoters round trip of %q: %v %v", tc.in, again, err)
			}
		}
	}
}

func TestValidateVoters(t *testing.T) {
	vs := []Voter{{1, "h:1"}, {2, "h:2"}}
	for _, tc := range []struct {
		vs   []Voter
		self int32
		ok   bool
	}{
		{vs, 1, true},
		{vs, 3, false}, // self not listed
		{[]Voter{{1, "h:1"}, {1, "h:2"}}, 1, false},
		{[]Voter{{1, "h:1"}, {2, "h:1"}}, 1, false},
		{[]Voter{{1, ""}}, 1, false},
	} {
		if err := validateVoters(tc.vs, tc.self); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidVoters)) {
			t.Errorf("validateVoters(%v, %d) = %v, want ok=%v", tc.vs, tc.self, err, tc.ok)
		}
	}
	if _, err := Open(Config{NodeID: 3, DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", Voters: vs}); !errors.Is(err, ErrInvalidVoters) {
		t.Fatalf("Open with voters not listing the node: %v", err)
	}
}
