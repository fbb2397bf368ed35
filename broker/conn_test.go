package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func dial(t *testing.T, b *Broker) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	return nc
}

func frameOf(r kmsg.Request, version int16, corr int32) []byte {
	r.SetVersion(version)
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("test")).AppendRequest(nil, r, corr)
}

// expectClosed requires the broker to close nc without answering.
func expectClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	var buf [1]byte
	if _, err := nc.Read(buf[:]); !errors.Is(err, io.EOF) && !isConnReset(err) {
		t.Fatalf("connection not closed: %v", err)
	}
}

func TestApiVersionsUnsupportedVersion(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, nil)
	nc := dial(t, b)
	f := frameOf(kmsg.NewPtrApiVersionsRequest(), 0, 11)
	binary.BigEndian.PutUint16(f[6:], 99) // version in the header
	nc.Write(f)
	body := readResponse(t, nc, 11)
	resp := kmsg.NewPtrApiVersionsResponse()
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != apiVersionsKey || resp.ApiKeys[0].MaxVersion != 4 {
		t.Fatalf("unsupported-version answer: %+v", resp)
	}
	// The connection stays usable.
	nc.Write(frameOf(kmsg.NewPtrApiVersionsRequest(), 2, 12))
	resp = kmsg.NewPtrApiVersionsResponse()
	resp.Version = 2
	if err := resp.ReadFrom(readResponse(t, nc, 12)); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("v2 after fallback: %v %d", err, resp.ErrorCode)
	}
	// Every advertised range is within kmsg's and starts no higher than it ends.
	for _, k := range resp.ApiKeys {
		if r := kmsg.RequestForKey(k.ApiKey); r == nil || k.MaxVersion > r.MaxVersion() || k.MinVersion > k.MaxVersion {
			t.Fatalf("bad advertised range %+v", k)
		}
	}
}

func TestBadRequestsCloseOnlyTheirConnection(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) { c.MaxRequestBytes = 1 << 16 })
	other := dial(t, b)
	cases := map[string][]byte{
		"unknown key": {0, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff},
		"unsupported version": func() []byte {
			f := frameOf(kmsg.NewPtrMetadataRequest(), 1, 1)
			binary.BigEndian.PutUint16(f[6:], 77)
			return f
		}(),
		"oversize":       {0, 2, 0, 0, 0, 3},
		"negative size":  {0xff, 0xff, 0xff, 0xff},
		"malformed body": {0, 0, 0, 12, 0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff},
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			nc := dial(t, b)
			nc.Write(frame)
			expectClosed(t, nc)
		})
	}
	other.Write(frameOf(kmsg.NewPtrApiVersionsRequest(), 0, 3))
	readResponse(t, other, 3)
	if n := b.handlerPanics.Load(); n != 0 {
		t.Fatalf("%d handler panics", n)
	}
}

func TestPipelinedResponsesInOrder(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, nil)
	nc := dial(t, b)
	var frames []byte
	for i := int32(0); i < 50; i++ {
		var r kmsg.Request = kmsg.NewPtrApiVersionsRequest()
		v := int16(0)
		if i%2 == 1 {
			r, v = kmsg.NewPtrMetadataRequest(), 1
		}
		frames = append(frames, frameOf(r, v, 1000+i)...)
	}
	if _, err := nc.Write(frames); err != nil {
		t.Fatal(err)
	}
	for i := int32(0); i < 50; i++ {
		readResponse(t, nc, 1000+i)
	}
}

func TestReadFrameGrows(t *testing.T) {
	t.Parallel()
	for _, recycle := range []bool{false, true} {
		for _, size := range []int{0, 1, 4095, 4097, frameChunk - 1, frameChunk, 3*frameChunk + 17, 1<<maxFrameClass + 1} {
			data := make([]byte, size)
			fillPattern(data, func(i int) byte { return byte(i * 7) })
			// Twice: the second read of a recyclable size reuses the first
			// frame's buffer, which must not leak its old bytes.
			for round := range 2 {
				got, err := readFrame(bytes.NewReader(data), size, recycle)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("recycle %v size %d round %d: err %v, equal %v", recycle, size, round, err, bytes.Equal(got, data))
				}
				if recycle {
					fillPattern(got, func(int) byte { return 0xEE })
					recycledFrames.put(got)
				}
			}
			if _, err := readFrame(bytes.NewReader(data[:size/2]), size, recycle); size > 0 && err == nil {
				t.Fatalf("recycle %v size %d: short input accepted", recycle, size)
			}
		}
	}
}

// fillPattern sets b[i] = at(i) for every i, for an at that repeats every
// 256 bytes. It writes the first period byte by byte and then doubles it
// with copy: the 64 MiB frames of TestReadFrameGrows filled one
// instrumented store at a time take seconds under -race.
func fillPattern(b []byte, at func(int) byte) {
	n := min(len(b), 256)
	for i := range n {
		b[i] = at(i)
	}
	for n < len(b) {
		n += copy(b[n:], b[:n])
	}
}

func TestFramePoolClasses(t *testing.T) {
	var fp framePool
	tests := []struct{ size, capacity int }{
		{0, 4096}, {1, 4096}, {4096, 4096}, {4097, 8192}, {5_600_000, 8 << 20},
		{1 << maxFrameClass, 1 << maxFrameClass}, {1<<maxFrameClass + 1, 1<<maxFrameClass + 1},
	}
	for _, tc := range tests {
		if got := fp.capacity(tc.size); got != tc.capacity {
			t.Errorf("capacity(%d) = %d, want %d", tc.size, got, tc.capacity)
		}
	}
	// A frame of a non-class capacity (allocated for an API that may keep
	// it) never enters the pool.
	fp.put(make([]byte, 10, 5000))
	if got := fp.get(10); got != nil {
		t.Fatalf("odd-capacity frame was recycled (cap %d)", cap(got))
	}
}

func TestIdleConnectionClosed(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) { c.IdleTimeout = 50 * time.Millisecond })
	nc := dial(t, b)
	expectClosed(t, nc)
}

// Close answers parked long polls at once instead of waiting out max wait,
// and the client gets its response before the connection closes.
func TestCloseAnswersLongPoll(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, nil)
	createTopic(t, newAdmin(t, b), "lp-close", 1, nil)
	nc := dial(t, b)
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.SessionEpoch = 120_000, 1, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "lp-close"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	nc.Write(frameOf(req, 11, 42))
	// Close only once the fetch is parked (bounded by count, not time).
	p := b.parts.get("lp-close", 0)
	for i := 0; ; i++ {
		p.waitMu.Lock()
		n := len(p.waiters)
		p.waitMu.Unlock()
		if n > 0 {
			break
		}
		if i == 2000 {
			t.Fatal("fetch never parked")
		}
		time.Sleep(5 * time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	body := readResponse(t, nc, 42) // within the 20 s connection deadline, not 120 s
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 11
	if err := resp.ReadFrom(body); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("long poll answer at close: %v %+v", err, resp)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
