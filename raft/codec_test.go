package raft

import (
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

// TestSortedMapEncoding pins the log form of the commands that carry a
// string-keyed map (config strings, quota floats) to exact bytes, so a
// change to the map codec that shifts the wire or snapshot format fails
// here, and checks that those bytes decode back to the same command.
func TestSortedMapEncoding(t *testing.T) {
	tests := []struct {
		name string
		cmd  Command
		want string // hex
	}{
		{
			name: "configs empty",
			cmd:  AlterConfigs{Resource: ResourceTopic, Name: "t"},
			want: "090201740000",
		},
		{
			name: "configs sorted on write",
			cmd: AlterConfigs{Resource: ResourceBroker, Name: "1",
				Set: map[string]string{"retention.ms": "10", "cleanup.policy": "compact", "a": ""}, Delete: []string{"x"}},
			want: "09040131030161000e636c65616e75702e706f6c69637907636f6d706163740c726574656e74696f6e2e6d73023130010178",
		},
		{
			name: "quotas empty",
			cmd:  AlterClientQuotas{Changes: []QuotaChange{{Entity: qAlice, Delete: []string{QuotaProducerByteRate}}}},
			want: "11010105616c696365000000011270726f64756365725f627974655f72617465",
		},
		{
			name: "quotas sorted on write",
			cmd: AlterClientQuotas{Changes: []QuotaChange{{Entity: qAliceClient,
				Set: map[string]float64{QuotaRequestPercentage: 12.5, QuotaConsumerByteRate: 1024, QuotaProducerByteRate: 2048}}}},
			want: "11010105616c6963650103617070000312636f6e73756d65725f627974655f7261746540900000000000001270726f64756365725f627974655f7261746540a000000000000012726571756573745f70657263656e74616765402900000000000000",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := EncodeCommand(tc.cmd)
			if got := hex.EncodeToString(b); got != tc.want {
				t.Fatalf("encoding changed:\ngot  %s\nwant %s", got, tc.want)
			}
			got, err := DecodeCommand(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.cmd) {
				t.Fatalf("round trip:\ngot  %#v\nwant %#v", got, tc.cmd)
			}
		})
	}
}

// TestSortedMapRejects: map bytes the encoder cannot produce (keys out of
// order or repeated, more entries than the input can hold, a value cut
// short) are corrupt commands, not maps.
func TestSortedMapRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string // hex
	}{
		{"configs keys unsorted", "0904013102016201310161013100"},
		{"configs key repeated", "0904013102016101310161013100"},
		{"configs count exceeds input", "09040131050161013100"},
		{"quotas keys unsorted", "11010105616c69636500000201623ff000000000000001613ff000000000000000"},
		{"quotas count exceeds input", "11010105616c69636500000201613ff000000000000000"},
		{"quotas value truncated", "11010105616c696365000001" + "0a6162636465666768696a" + "3ff000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			cmd, err := DecodeCommand(b)
			if !errors.Is(err, ErrCorruptCommand) {
				t.Fatalf("DecodeCommand = %#v, %v; want ErrCorruptCommand", cmd, err)
			}
		})
	}
}
