package broker

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	fuzzBrokerOnce sync.Once
	fuzzBroker     *Broker
)

// FuzzRequestPath drives arbitrary bytes through the whole request path of a
// live broker (frame -> header -> body -> handler -> response) over a real
// loopback connection. Each input is written, the write side half-closed, and
// every response read until the broker closes the connection. The broker
// must never panic (recovered handler panics are counted) and must finish
// every input promptly: a connection whose client stopped sending ends its
// long polls at once.
func FuzzRequestPath(f *testing.F) {
	// One broker serves every input of this process; it lives until the
	// fuzz target ends.
	b := startTestBroker(f, func(c *Config) {
		c.MaxRequestBytes = 1 << 20
		c.Logger = slog.New(slog.DiscardHandler) // f.Log is not allowed inside the fuzz target
	})
	if _, e, msg := b.createTopic(context.Background(), "fuzz", 2, 1, nil, nil, false); e != nil {
		f.Fatalf("create fuzz topic: %v %s", e, msg)
	}
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		nc, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		deadline := time.Now().Add(20 * time.Second)
		_ = nc.SetDeadline(deadline)
		readDone := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, nc)
			readDone <- err
		}()
		if _, err := nc.Write(data); err != nil && !isConnReset(err) {
			t.Fatalf("write: %v", err)
		}
		_ = nc.(*net.TCPConn).CloseWrite()
		if err := <-readDone; err != nil && !isConnReset(err) {
			t.Fatalf("broker did not finish the input: %v", err)
		}
		if n := b.handlerPanics.Load(); n != 0 {
			t.Fatalf("%d handler panics", n)
		}
		// The broker still serves others.
		checkApiVersions(t, b)
	})
}

func isConnReset(err error) bool {
	var ne *net.OpError
	if ok := asOpError(err, &ne); ok {
		return true
	}
	return false
}

func asOpError(err error, target **net.OpError) bool {
	for err != nil {
		if e, ok := err.(*net.OpError); ok {
			*target = e
			return !e.Timeout()
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// checkApiVersions sends one ApiVersions v3 request on a fresh connection and
// requires a well-formed answer.
func checkApiVersions(t testing.TB, b *Broker) {
	t.Helper()
	nc, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "strom-test", "1.0"
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("check")).AppendRequest(nil, req, 7)
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	resp := readResponse(t, nc, 7)
	av := kmsg.NewPtrApiVersionsResponse()
	av.Version = 3
	if err := av.ReadFrom(resp); err != nil || av.ErrorCode != 0 || len(av.ApiKeys) == 0 {
		t.Fatalf("api versions after fuzz input: %v code %d keys %d", err, av.ErrorCode, len(av.ApiKeys))
	}
}

// readResponse reads one response frame and returns its body after the
// correlation id (header v0: ApiVersions and non-flexible responses).
func readResponse(t testing.TB, nc net.Conn, corr int32) []byte {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		t.Fatalf("read response size: %v", err)
	}
	n := int(uint32(size[0])<<24 | uint32(size[1])<<16 | uint32(size[2])<<8 | uint32(size[3]))
	buf := make([]byte, n)
	if _, err := io.ReadFull(nc, buf); err != nil {
		t.Fatalf("read response: %v", err)
	}
	if got := int32(uint32(buf[0])<<24 | uint32(buf[1])<<16 | uint32(buf[2])<<8 | uint32(buf[3])); got != corr {
		t.Fatalf("correlation id %d, want %d", got, corr)
	}
	return buf[4:]
}

// FuzzValidateBatch feeds arbitrary bytes to the produce-side batch validator
// (header, CRC, decompression, record decoding, rebuild): errors are fine,
// panics and runaway allocations are not.
func FuzzValidateBatch(f *testing.F) {
	f.Add([]byte{})
	pcs := []*partConfig{
		testPartConfig(nil),
		testPartConfig(map[string]string{"compression.type": "zstd", "message.timestamp.type": "LogAppendTime"}),
		testPartConfig(map[string]string{"cleanup.policy": "compact", "compression.type": "uncompressed"}),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, pc := range pcs {
			in := bytes.Clone(data)
			chk, e, _ := validateBatch(in, 9, pc, time.Now().UnixMilli())
			if e == nil && len(chk.batch) < batchHeaderSize {
				t.Fatalf("accepted a batch of %d bytes", len(chk.batch))
			}
		}
	})
}

// testPartConfig resolves topic overrides against defaults, without a broker.
func testPartConfig(topic map[string]string) *partConfig {
	b := &Broker{cfg: DefaultConfig(), staticConfigs: map[string]string{}}
	return b.buildPartConfig(topic, nil, nil)
}
