package raft

import (
	"bytes"
	"errors"
	"io"
	"math"
	"reflect"
	"testing"
)

var (
	qAlice       = QuotaEntity{User: Named("alice")}
	qAliceClient = QuotaEntity{User: Named("alice"), ClientID: Named("app")}
	qDefaultUser = QuotaEntity{User: DefaultName}
	qIP          = QuotaEntity{IP: Named("10.0.0.1")}
)

// TestAlterClientQuotas drives the command through sets, deletes and
// rejections and checks the resulting quota table.
func TestAlterClientQuotas(t *testing.T) {
	set := func(e QuotaEntity, kv map[string]float64, del ...string) AlterClientQuotas {
		return AlterClientQuotas{Changes: []QuotaChange{{Entity: e, Set: kv, Delete: del}}}
	}
	for _, tc := range []struct {
		name    string
		cmds    []AlterClientQuotas
		want    map[QuotaEntity]map[string]float64
		wantErr error // of the last command
	}{
		{name: "set user", cmds: []AlterClientQuotas{set(qAlice, map[string]float64{QuotaProducerByteRate: 1024})},
			want: map[QuotaEntity]map[string]float64{qAlice: {QuotaProducerByteRate: 1024}}},
		{name: "merge keys", cmds: []AlterClientQuotas{
			set(qAlice, map[string]float64{QuotaProducerByteRate: 1024}),
			set(qAlice, map[string]float64{QuotaConsumerByteRate: 2048, QuotaRequestPercentage: 0.5})},
			want: map[QuotaEntity]map[string]float64{qAlice: {QuotaProducerByteRate: 1024, QuotaConsumerByteRate: 2048, QuotaRequestPercentage: 0.5}}},
		{name: "delete last key removes entity", cmds: []AlterClientQuotas{
			set(qAlice, map[string]float64{QuotaProducerByteRate: 1024}),
			set(qAlice, nil, QuotaProducerByteRate)},
			want: map[QuotaEntity]map[string]float64{}},
		{name: "delete absent key is a no-op", cmds: []AlterClientQuotas{set(qDefaultUser, nil, QuotaProducerByteRate)},
			want: map[QuotaEntity]map[string]float64{}},
		{name: "user and client and ip entities are distinct", cmds: []AlterClientQuotas{{Changes: []QuotaChange{
			{Entity: qAlice, Set: map[string]float64{QuotaProducerByteRate: 1}},
			{Entity: qAliceClient, Set: map[string]float64{QuotaProducerByteRate: 2}},
			{Entity: qIP, Set: map[string]float64{QuotaConnectionCreationRate: 3}}}}},
			want: map[QuotaEntity]map[string]float64{qAlice: {QuotaProducerByteRate: 1}, qAliceClient: {QuotaProducerByteRate: 2},
				qIP: {QuotaConnectionCreationRate: 3}}},
		{name: "unknown key", cmds: []AlterClientQuotas{set(qAlice, map[string]float64{"bogus": 1})}, wantErr: ErrInvalidCommand,
			want: map[QuotaEntity]map[string]float64{}},
		{name: "ip key on a user", cmds: []AlterClientQuotas{set(qAlice, map[string]float64{QuotaConnectionCreationRate: 1})}, wantErr: ErrInvalidCommand,
			want: map[QuotaEntity]map[string]float64{}},
		{name: "byte rate on an ip", cmds: []AlterClientQuotas{set(qIP, map[string]float64{QuotaProducerByteRate: 1})}, wantErr: ErrInvalidCommand,
			want: map[QuotaEntity]map[string]float64{}},
		{name: "long key with fraction", cmds: []AlterClientQuotas{set(qAlice, map[string]float64{QuotaProducerByteRate: 1.5})}, wantErr: ErrInvalidCommand,
			want: map[QuotaEntity]map[string]float64{}},
		{name: "zero", cmds: []AlterClientQuotas{set(qAlice, map[string]float64{QuotaRequestPercentage: 0})}, wantErr: ErrInvalidCommand,
			want: map[QuotaEntity]map[string]float64{}},
		{name: "negative", cmds: []AlterClientQuotas{set(qAlice, map[string]float64{QuotaControllerMutationRate: -1})}, wantErr: ErrInvalidCommand,
			want: map[QuotaEntity]map[string]float64{}},
		{name: "int too large", cmds: []AlterClientQuotas{set(qIP, map[string]float64{QuotaConnectionCreationRate: 1 << 31})}, wantErr: ErrInvalidCommand,
			want: map[QuotaEntity]map[string]float64{}},
		{name: "fraction within 1e-6", cmds: []AlterClientQuotas{set(qAlice, map[string]float64{QuotaProducerByteRate: 1024.0000001})},
			want: map[QuotaEntity]map[string]float64{qAlice: {QuotaProducerByteRate: 1024.0000001}}},
		{name: "NaN", cmds: []AlterClientQuotas{set(qAlice, map[string]float64{QuotaRequestPercentage: math.NaN()})}, wantErr: ErrInvalidCommand,
			want: map[QuotaEntity]map[string]float64{}},
		{name: "ip with user", cmds: []AlterClientQuotas{set(QuotaEntity{User: Named("a"), IP: DefaultName}, map[string]float64{QuotaProducerByteRate: 1})},
			wantErr: ErrInvalidCommand, want: map[QuotaEntity]map[string]float64{}},
		{name: "empty entity", cmds: []AlterClientQuotas{set(QuotaEntity{}, map[string]float64{QuotaProducerByteRate: 1})},
			wantErr: ErrInvalidCommand, want: map[QuotaEntity]map[string]float64{}},
		{name: "empty name", cmds: []AlterClientQuotas{set(QuotaEntity{User: Named("")}, map[string]float64{QuotaProducerByteRate: 1})},
			wantErr: ErrInvalidCommand, want: map[QuotaEntity]map[string]float64{}},
		{name: "one bad change fails all", cmds: []AlterClientQuotas{{Changes: []QuotaChange{
			{Entity: qAlice, Set: map[string]float64{QuotaProducerByteRate: 1}},
			{Entity: qIP, Set: map[string]float64{"nope": 1}}}}},
			wantErr: ErrInvalidCommand, want: map[QuotaEntity]map[string]float64{}},
		{name: "entity twice", cmds: []AlterClientQuotas{{Changes: []QuotaChange{
			{Entity: qAlice, Set: map[string]float64{QuotaProducerByteRate: 1}},
			{Entity: qAlice, Set: map[string]float64{QuotaProducerByteRate: 2}}}}},
			wantErr: ErrInvalidCommand, want: map[QuotaEntity]map[string]float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFSM()
			var err error
			for _, c := range tc.cmds {
				_, err = f.apply(c)
			}
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			got := f.current()
			if !reflect.DeepEqual(got.ClientQuotas, tc.want) {
				t.Fatalf("quotas = %v, want %v", got.ClientQuotas, tc.want)
			}
			checkInvariants(t, got)
		})
	}
}

// TestQuotasVersion: the version moves with every change of the quotas
// and only then, so caches keyed on it are rebuilt exactly when needed.
func TestQuotasVersion(t *testing.T) {
	f := newTestFSM()
	f.mustApply(t, InitCluster{ClusterID: "c"})
	if v := f.current().QuotasVersion; v != 0 {
		t.Fatalf("version before any quota = %d", v)
	}
	c := AlterClientQuotas{Changes: []QuotaChange{{Entity: qAlice, Set: map[string]float64{QuotaProducerByteRate: 5}}}}
	f.mustApply(t, c)
	v1 := f.current().QuotasVersion
	if v1 == 0 {
		t.Fatal("version did not move")
	}
	f.mustApply(t, c, RegisterBroker{ID: 1})
	if v := f.current().QuotasVersion; v != v1 {
		t.Fatalf("a no-op change moved the version %d -> %d", v1, v)
	}
	f.mustApply(t, AlterClientQuotas{Changes: []QuotaChange{{Entity: qAlice, Delete: []string{QuotaProducerByteRate}}}})
	if v := f.current().QuotasVersion; v <= v1 {
		t.Fatalf("delete did not move the version: %d", v)
	}
}

// TestQuotaSnapshotWithoutListeners: the quota section follows the
// optional listener section, also when no broker recorded listeners.
func TestQuotaSnapshotWithoutListeners(t *testing.T) {
	f := newTestFSM()
	f.mustApply(t, InitCluster{ClusterID: "c"}, RegisterBroker{ID: 1, Host: "h", Port: 1},
		AlterClientQuotas{Changes: []QuotaChange{
			{Entity: qDefaultUser, Set: map[string]float64{QuotaConsumerByteRate: 7}},
			{Entity: QuotaEntity{ClientID: DefaultName}, Set: map[string]float64{QuotaControllerMutationRate: 0.25}}}})
	want := f.current()
	snap, _ := f.Snapshot()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	dst := newFSM()
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	got := dst.current()
	if !reflect.DeepEqual(got.ClientQuotas, want.ClientQuotas) || got.QuotasVersion != want.QuotasVersion {
		t.Fatalf("restored quotas %v (v%d), want %v (v%d)", got.ClientQuotas, got.QuotasVersion, want.ClientQuotas, want.QuotasVersion)
	}
	// A snapshot without quotas is unchanged by their existence: no
	// trailing section, so older snapshots and new ones agree.
	plain := newTestFSM()
	plain.mustApply(t, InitCluster{ClusterID: "c"}, RegisterBroker{ID: 1, Host: "h", Port: 1})
	b := encodeState(plain.current())
	s, err := decodeState(b)
	if err != nil || len(s.ClientQuotas) != 0 {
		t.Fatalf("plain snapshot: %v %v", err, s)
	}
}

// TestGroupConfigSnapshot: the group config section follows the quota and
// listener sections, which are written (empty) when only group configs
// exist, and every combination round-trips byte for byte.
func TestGroupConfigSnapshot(t *testing.T) {
	groups := AlterConfigs{Resource: ResourceGroup, Name: "g", Set: map[string]string{"consumer.heartbeat.interval.ms": "6000"}}
	quotas := AlterClientQuotas{Changes: []QuotaChange{{Entity: qDefaultUser, Set: map[string]float64{QuotaConsumerByteRate: 7}}}}
	for _, tt := range []struct {
		name string
		cmds []Command
	}{
		{"group configs only", []Command{groups}},
		{"group configs and quotas", []Command{groups, quotas}},
		{"quotas only", []Command{quotas}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newTestFSM()
			f.mustApply(t, append([]Command{InitCluster{ClusterID: "c"}, RegisterBroker{ID: 1, Host: "h", Port: 1}}, tt.cmds...)...)
			want := f.current()
			b := encodeState(want)
			got, err := decodeState(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.GroupConfigs, want.GroupConfigs) || !reflect.DeepEqual(got.ClientQuotas, want.ClientQuotas) {
				t.Fatalf("restored groups %v quotas %v, want %v %v", got.GroupConfigs, got.ClientQuotas, want.GroupConfigs, want.ClientQuotas)
			}
			if !bytes.Equal(encodeState(got), b) {
				t.Fatal("snapshot does not round-trip byte for byte")
			}
		})
	}
}
