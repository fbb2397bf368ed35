package harness

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// FreePorts returns n distinct TCP ports that were free on 127.0.0.1 a moment ago. All n listeners are
// held open together so the kernel cannot hand out the same port twice; another process can still take
// one before our server binds it, which shows up as a start failure with "Address already in use".
func FreePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// portClashAttempts bounds how often a cluster start is retried after losing a port race.
const portClashAttempts = 3

// retryPortClash runs start, and again with fresh node folders (and so fresh ports) when it failed
// because a port FreePorts handed out was taken before the server bound it: other test processes on
// this machine allocate ports at the same time. Any other failure is returned at once.
func retryPortClash(dir string, start func() (*LocalCluster, error)) (*LocalCluster, error) {
	var err error
	for range portClashAttempts {
		var c *LocalCluster
		if c, err = start(); err == nil {
			return c, nil
		}
		if !portClash(dir) {
			return nil, err
		}
		nodes, _ := filepath.Glob(filepath.Join(dir, "node-*"))
		for _, n := range nodes {
			if rmErr := os.RemoveAll(n); rmErr != nil {
				return nil, fmt.Errorf("%w (and clearing %s for a retry: %v)", err, n, rmErr)
			}
		}
	}
	return nil, fmt.Errorf("%d attempts lost a port race: %w", portClashAttempts, err)
}

// portClash reports whether any node log under dir says a listener could not bind its address.
func portClash(dir string) bool {
	logs, _ := filepath.Glob(filepath.Join(dir, "node-*", "*.log"))
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err == nil && bytes.Contains(bytes.ToLower(b), []byte("address already in use")) {
			return true
		}
	}
	return false
}
