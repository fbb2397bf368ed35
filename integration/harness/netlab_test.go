//go:build linux

package harness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inNetns runs fn on an OS thread that has joined namespace ns (HostNode: stay in the test's own).
// Sockets fn creates stay in ns after it returns.
func inNetns(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", ns, err)
	}
	ferr := fn()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, so it dies with the goroutine instead of serving others in ns.
		return errors.Join(ferr, fmt.Errorf("setns back: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// TestNetLab builds a three-node lab and checks that every node reaches every other and the test's
// namespace reaches every node, that Cut takes exactly the named links down in both directions (also a
// node's link to the test), and that Heal restores them.
func TestNetLab(t *testing.T) {
	l, err := newNetLab(3)
	if err != nil {
		t.Fatal(err)
	}
	k := l.k
	defer func() {
		if err := l.close(); err != nil {
			t.Errorf("close: %v", err)
		}
		for i := range 3 {
			if _, err := os.Stat(fmt.Sprintf("/run/netns/strom-%d-%d", k, i)); err == nil {
				t.Errorf("namespace strom-%d-%d left behind", k, i)
			}
		}
		if _, err := os.Stat("/sys/class/net/" + hostLink(k, 0)); err == nil {
			t.Errorf("link %s left behind", hostLink(k, 0))
		}
	}()
	nsOf := func(i int) string {
		if i == HostNode {
			return ""
		}
		return l.ns[i]
	}
	addrOf := func(i int) string {
		if i == HostNode {
			return l.addr(labHost)
		}
		return l.ip[i]
	}
	ends := []int{HostNode, 0, 1, 2}
	listeners := map[int]net.Listener{}
	for _, i := range ends {
		if err := inNetns(nsOf(i), func() error {
			ln, err := net.Listen("tcp", addrOf(i)+":0")
			listeners[i] = ln
			return err
		}); err != nil {
			t.Fatalf("listen at %d: %v", i, err)
		}
		ln := listeners[i]
		defer ln.Close()
		go func() { // accepts until the listener closes at the end of the test
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	reach := func(a, b int) bool {
		var ok bool
		_ = inNetns(nsOf(a), func() error {
			c, err := net.DialTimeout("tcp", listeners[b].Addr().String(), 500*time.Millisecond)
			if err == nil {
				ok = true
				c.Close()
			}
			return nil
		})
		return ok
	}
	check := func(what string, down map[[2]int]bool) {
		t.Helper()
		for _, a := range ends {
			for _, b := range ends {
				if a == b {
					continue
				}
				want := !down[[2]int{min(a, b), max(a, b)}]
				if got := reach(a, b); got != want {
					t.Errorf("%s: %d reaches %d: %v, want %v", what, a, b, got, want)
				}
			}
		}
	}
	check("fresh lab", nil)
	if err := l.cut(0, 1); err != nil {
		t.Fatal(err)
	}
	if err := l.cut(2, HostNode); err != nil {
		t.Fatal(err)
	}
	check("cut 0-1 and 2-host", map[[2]int]bool{{0, 1}: true, {HostNode, 2}: true})
	if err := l.heal(); err != nil {
		t.Fatal(err)
	}
	check("healed", nil)
	if err := l.cut(1, 1); !errors.Is(err, ErrBadOption) {
		t.Errorf("cut a node from itself: %v, want ErrBadOption", err)
	}
	if err := l.cut(0, 3); !errors.Is(err, ErrNodeRange) {
		t.Errorf("cut node 3 of 3: %v, want ErrNodeRange", err)
	}
}

// TestDeleteLink deletes a link that is not there, one that is, one the kernel removes between
// deleteLink's check and its delete (as it does on its own once the peer's namespace is deleted), and
// links whose peer's namespace was just deleted. None of these is an error.
func TestDeleteLink(t *testing.T) {
	name := fmt.Sprintf("stvdl%d", os.Getpid()%100000)
	ns := fmt.Sprintf("strom-dl-%d", os.Getpid())
	addPair := func(t *testing.T, peerNS string) {
		t.Helper()
		args := []string{"link", "add", name, "type", "veth", "peer", "name", name + "p"}
		if peerNS != "" {
			args = append(args, "netns", peerNS)
		}
		if err := ipCmd(args...); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("absent", func(t *testing.T) {
		if err := deleteLink(name); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("present", func(t *testing.T) {
		addPair(t, "")
		if err := deleteLink(name); err != nil || linkExists(name) {
			t.Fatalf("deleteLink: %v; link left: %v", err, linkExists(name))
		}
	})
	t.Run("vanishes during the delete", func(t *testing.T) {
		addPair(t, "")
		del := linkDel
		defer func() { linkDel = del }()
		linkDel = func(name string) error {
			if err := del(name); err != nil { // the kernel gets there first
				return err
			}
			return del(name) // and ip finds no device
		}
		if err := deleteLink(name); err != nil || linkExists(name) {
			t.Fatalf("deleteLink: %v; link left: %v", err, linkExists(name))
		}
	})
	t.Run("peer namespace deleted", func(t *testing.T) {
		for i := range 10 {
			if err := ipCmd("netns", "add", ns); err != nil {
				t.Fatal(err)
			}
			addPair(t, ns)
			if err := ipCmd("netns", "del", ns); err != nil {
				t.Fatal(err)
			}
			if err := deleteLink(name); err != nil || linkExists(name) {
				t.Fatalf("round %d: deleteLink: %v; link left: %v", i, err, linkExists(name))
			}
		}
	})
}
