package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/storage"
)

// TestFetchResponseFill encodes fetch responses holding record markers, sends
// them the way the connection writer does (records read into the assembled
// bytes, copied from the file, or sent by sendfile), and checks that kmsg
// decodes what arrived to exactly the stored batches, with a size prefix that
// matches, for flexible and non-flexible versions and mixes of partitions
// with and without records.
func TestFetchResponseFill(t *testing.T) {
	// Three logs with different contents.
	var logs []*storage.Log
	var want [][]byte
	for i := range 3 {
		lg, err := storage.Open(t.TempDir(), storage.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lg.Close() })
		var all []byte
		off := int64(0)
		for j := range i + 2 {
			b := mkBatch(3+j, time.Now().UnixMilli(), nil)
			storage.SetBaseOffset(b, off)
			if _, err := lg.Append(b); err != nil {
				t.Fatal(err)
			}
			off += int64(3 + j)
			all = append(all, b...)
		}
		lg.SetHighWatermark(lg.EndOffset())
		logs = append(logs, lg)
		want = append(want, all)
	}
	tests := []struct {
		name    string
		version int16
		parts   []int // per encoded partition: index of its log, -1 for no records
		topics  []int // number of partitions per topic
	}{
		{"v4 one partition", 4, []int{0}, []int{1}},
		{"v11 mixed", 11, []int{0, -1, 2}, []int{2, 1}},
		{"v12 flexible", 12, []int{1, 0, -1, 2}, []int{1, 3}},
		{"v16 no records", 16, []int{-1, -1}, []int{2}},
		{"v18 all", 18, []int{2, 1, 0}, []int{1, 1, 1}},
	}
	modes := []struct {
		name        string
		minSendfile int
		tcp         bool
	}{
		{"read into frame", 1 << 30, false},
		{"copy from file", 0, false},
		{"sendfile over tcp", 0, true},
		{"mixed over tcp", 200, true},
	}
	for _, mode := range modes {
		for _, tc := range tests {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				resp := kmsg.NewPtrFetchResponse()
				fr := &fetchResponse{FetchResponse: resp}
				k := 0
				for ti, np := range tc.topics {
					rt := kmsg.NewFetchResponseTopic()
					rt.Topic = fmt.Sprintf("topic-%d", ti)
					for pi := range np {
						rp := kmsg.NewFetchResponseTopicPartition()
						rp.Partition = int32(pi)
						rp.RecordBatches = []byte{}
						var sl *storage.Slice
						if li := tc.parts[k]; li >= 0 {
							var err error
							if sl, err = logs[li].Read(0, 1<<20, logs[li].HighWatermark()); err != nil {
								t.Fatal(err)
							}
							rp.RecordBatches = recordsMarker()
						}
						rt.Partitions = append(rt.Partitions, rp)
						fr.slices = append(fr.slices, sl)
						k++
					}
					resp.Topics = append(resp.Topics, rt)
				}
				hint := fr.sizeHint()
				frame, body := encodeResponse(nil, pending{key: resp.Key(), version: tc.version, corr: 7}, fr)
				if len(frame) > hint {
					t.Errorf("size hint %d below encoded size %d", hint, len(frame))
				}
				sent := sendFrame(t, fr, frame, body, mode.minSendfile, mode.tcp)
				for _, sl := range fr.slices {
					if sl != nil {
						t.Fatal("writeTo left a slice unreleased")
					}
				}
				if len(sent) < 4 || int(binary.BigEndian.Uint32(sent)) != len(sent)-4 {
					t.Fatalf("sent %d bytes under a size prefix of %d", len(sent), binary.BigEndian.Uint32(sent))
				}
				var dec kmsg.FetchResponse
				dec.SetVersion(tc.version)
				if err := dec.ReadFrom(sent[body:]); err != nil {
					t.Fatal(err)
				}
				k = 0
				for _, rt := range dec.Topics {
					for _, rp := range rt.Partitions {
						var exp []byte
						if li := tc.parts[k]; li >= 0 {
							exp = want[li]
						}
						if !bytes.Equal(rp.RecordBatches, exp) && !(len(exp) == 0 && len(rp.RecordBatches) == 0) {
							t.Fatalf("partition %d: %d bytes, want %d (equal prefix %v)", k, len(rp.RecordBatches), len(exp), bytes.HasPrefix(rp.RecordBatches, exp[:min(len(exp), 16)]))
						}
						k++
					}
				}
				if k != len(tc.parts) {
					t.Fatalf("decoded %d partitions, want %d", k, len(tc.parts))
				}
			})
		}
	}
}

// sendFrame runs fr.writeTo into a buffer, or through a loopback TCP
// connection (where Slice.WriteTo uses sendfile), and returns what arrived.
func sendFrame(t *testing.T, fr *fetchResponse, frame []byte, body, minSendfile int, tcp bool) []byte {
	t.Helper()
	if !tcp {
		var out bytes.Buffer
		var scratch []byte
		if err := fr.writeTo(&out, frame, body, minSendfile, &scratch); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- b
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var scratch []byte
	if err := fr.writeTo(c, frame, body, minSendfile, &scratch); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	return <-got
}

// TestFetchResponseFillMismatch: a response whose encoding and slices
// disagree is refused before any byte is sent (the writer then closes the
// connection) and its slices are released anyway.
func TestFetchResponseFillMismatch(t *testing.T) {
	lg, err := storage.Open(t.TempDir(), storage.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lg.Close() })
	b := mkBatch(2, time.Now().UnixMilli(), nil)
	if _, err := lg.Append(b); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{{}, {0, 0}, bytes.Repeat([]byte{0}, 300)} {
		resp := kmsg.NewPtrFetchResponse()
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = "t"
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.RecordBatches = bad // not a one-byte marker
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
		for _, version := range []int16{11, 12} {
			sl, err := lg.Read(0, 1<<20, lg.EndOffset())
			if err != nil {
				t.Fatal(err)
			}
			fr := &fetchResponse{FetchResponse: resp, slices: []*storage.Slice{sl}}
			frame, body := encodeResponse(nil, pending{key: resp.Key(), version: version}, fr)
			var out bytes.Buffer
			var scratch []byte
			if err := fr.writeTo(&out, frame, body, 0, &scratch); !errors.Is(err, ErrResponseLayout) {
				t.Fatalf("v%d, %d-byte field instead of a marker: %v", version, len(bad), err)
			}
			if out.Len() != 0 {
				t.Fatalf("%d bytes sent of a response with a wrong layout", out.Len())
			}
			if fr.slices[0] != nil {
				t.Fatal("slice not released after a failed fill")
			}
		}
	}
}
