package raft

import (
	"errors"
	"reflect"
	"testing"
)

func TestRegisterBrokerListeners(t *testing.T) {
	eps := []Endpoint{{Name: "INTERNAL", Host: "10.0.0.1", Port: 9092}, {Name: "EXTERNAL", Host: "kafka.example", Port: 9094}}
	reg := RegisterBroker{ID: 1, Host: "10.0.0.1", Port: 9092, IncarnationID: [16]byte{1}, Listeners: eps}
	f := newTestFSM()
	f.mustApply(t, reg)
	b := f.current().Brokers[1]
	if !reflect.DeepEqual(b.Listeners, eps) {
		t.Fatalf("listeners %+v", b.Listeners)
	}
	for _, tc := range []struct {
		name string
		host string
		port int32
		ok   bool
	}{{"INTERNAL", "10.0.0.1", 9092, true}, {"EXTERNAL", "kafka.example", 9094, true}, {"OTHER", "", 0, false}} {
		if h, p, ok := b.Endpoint(tc.name); h != tc.host || p != tc.port || ok != tc.ok {
			t.Errorf("endpoint %s: %s %d %v", tc.name, h, p, ok)
		}
	}
	// The same incarnation re-registering with other endpoints updates them
	// and keeps the epoch.
	reg.Listeners = eps[:1]
	f.mustApply(t, reg)
	if got := f.current().Brokers[1]; len(got.Listeners) != 1 || got.Epoch != b.Epoch {
		t.Fatalf("re-registration: %+v", got)
	}
	// A registration without listeners (an old log entry) answers every
	// listener name with Host and Port.
	old := RegisterBroker{ID: 2, Host: "h2", Port: 1, IncarnationID: [16]byte{2}}
	cmd, err := DecodeCommand(EncodeCommand(old))
	if err != nil || !reflect.DeepEqual(cmd, old) {
		t.Fatalf("old registration decodes as %+v %v", cmd, err)
	}
	f.mustApply(t, old)
	if h, p, ok := f.current().Brokers[2].Endpoint("ANY"); h != "h2" || p != 1 || !ok {
		t.Fatalf("old broker endpoint %s %d %v", h, p, ok)
	}
	if _, err := f.apply(RegisterBroker{ID: 3, Listeners: []Endpoint{{Name: "A"}, {Name: "A"}}}); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("duplicate listener names: %v", err)
	}
}
