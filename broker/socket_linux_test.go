package broker

import (
	"net"
	"syscall"
	"testing"
)

// TestTuneSocket checks the buffer sizes an accepted connection gets: the kernel reports twice what was
// set (it reserves the other half for bookkeeping), and -1 leaves the autotuned default alone.
func TestTuneSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sizes := func(tc *net.TCPConn) (snd, rcv int) {
		raw, err := tc.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		err = raw.Control(func(fd uintptr) {
			snd, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
			if serr == nil {
				rcv, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
			}
		})
		if err != nil || serr != nil {
			t.Fatal(err, serr)
		}
		return snd, rcv
	}
	accept := func() *net.TCPConn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.(*net.TCPConn)
	}

	untouched := accept()
	defSnd, defRcv := sizes(untouched)

	tc := accept()
	tuneSocket(tc, 102400, 65536)
	if snd, rcv := sizes(tc); snd != 2*102400 || rcv != 2*65536 {
		t.Errorf("tuned to 102400/65536: SO_SNDBUF %d, SO_RCVBUF %d; want %d, %d", snd, rcv, 2*102400, 2*65536)
	}
	tc = accept()
	tuneSocket(tc, -1, -1)
	if snd, rcv := sizes(tc); snd != defSnd || rcv != defRcv {
		t.Errorf("-1/-1: SO_SNDBUF %d, SO_RCVBUF %d; want the defaults %d, %d", snd, rcv, defSnd, defRcv)
	}
}
