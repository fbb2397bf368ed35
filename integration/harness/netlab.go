package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// A netLab is a private network for one cluster, made of network namespaces and veth pairs and no
// bridge (a bridge's frames pass the host's iptables FORWARD chain, which Docker sets to DROP): node i
// runs in namespace strom-K-i with address 10.213.K.(i+1)/32 on its loopback, every two nodes are joined
// by a veth pair of their own, and every node by another to the test's namespace, whose end of each
// carries 10.213.K.254/32. /32 routes send each address over its own pair, so no packet is ever
// forwarded. Nodes listen on their own address, so every byte between nodes, and between the test and a
// node, crosses a link the lab can cut (Cut: the route becomes a blackhole at both ends) and restore
// (Heal) without touching the processes: a network partition, where a kill would be a crash.
//
// The lab owns what it creates and nothing else. It claims subnet K by creating the veth stvK_0 in the
// test's namespace (which fails if another lab holds K) and writes its PID into that link's alias; a
// lab whose owner died without closing it is removed by the next lab that looks. Creating namespaces
// needs root; ErrUnsupported says so.
type netLab struct {
	k  int
	ns []string // per node
	ip []string // per node

	mu   sync.Mutex
	cuts map[[2]int]bool // node pairs cut; HostNode is the test's namespace; guarded by mu
}

// labSubnets is how many labs (10.213.0.0/24 .. 10.213.63.0/24) can exist at once on a machine.
const labSubnets = 64

// labHost is the host number of the test's address in every lab subnet.
const labHost = 254

// HostNode names the test's own network namespace (where clients run) in Cut.
const HostNode = -1

// ipCmd runs `ip args...`, returning its combined output in the error.
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// newNetLab creates the namespaces and links of n nodes.
func newNetLab(n int) (*netLab, error) {
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("%w: network namespaces need Linux", ErrUnsupported)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: network namespaces need root (euid %d)", ErrUnsupported, os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("%w: network namespaces need iproute2's ip: %v", ErrUnsupported, err)
	}
	if n < 1 || n > 9 {
		return nil, fmt.Errorf("%w: %d nodes in a lab (want 1..9)", ErrBadOption, n)
	}
	reapDeadLabs()
	l := &netLab{k: -1, cuts: map[[2]int]bool{}}
	for k := 0; k < labSubnets; k++ {
		if ipCmd("link", "add", hostLink(k, 0), "type", "veth", "peer", "name", hostLink(k, 0)+"p") == nil {
			l.k = k
			break
		}
	}
	if l.k < 0 {
		return nil, fmt.Errorf("network lab: all %d subnets in use", labSubnets)
	}
	if err := l.setup(n); err != nil {
		k := l.k
		_ = l.close()
		return nil, fmt.Errorf("network lab %d: %w", k, err)
	}
	return l, nil
}

// hostLink is the name, in the test's namespace, of lab k's link to node i.
func hostLink(k, i int) string { return fmt.Sprintf("stv%d_%d", k, i) }

// peerLink is the name, in a node's namespace, of its link to node j.
func peerLink(j int) string { return fmt.Sprintf("p%d", j) }

// nodeHostLink is the name, in a node's namespace, of its link to the test's namespace.
// Not "h": ip reads that as "help".
const nodeHostLink = "tohost"

func (l *netLab) setup(n int) error {
	k := l.k
	if err := ipCmd("link", "set", "dev", hostLink(k, 0), "alias", "strom-lab-pid-"+strconv.Itoa(os.Getpid())); err != nil {
		return err
	}
	// Namespaces of this subnet are left over from a dead owner; the subnet is ours now.
	removeNamespaces(fmt.Sprintf("strom-%d-", k))
	host := l.addr(labHost)
	for i := 0; i < n; i++ {
		ns := fmt.Sprintf("strom-%d-%d", k, i)
		if err := ipCmd("netns", "add", ns); err != nil {
			return err
		}
		l.ns = append(l.ns, ns)
		l.ip = append(l.ip, l.addr(i+1))
	}
	var steps [][]string
	for i, ns := range l.ns {
		hl := hostLink(k, i)
		if i > 0 {
			// A link of a previous owner of K can outlive its namespace for a moment (the kernel
			// tears namespaces down asynchronously); K is ours, so it goes.
			_ = deleteLink(hl)
			steps = append(steps, []string{"link", "add", hl, "type", "veth", "peer", "name", hl + "p"})
		}
		steps = append(steps,
			[]string{"link", "set", hl + "p", "netns", ns},
			[]string{"-n", ns, "link", "set", hl + "p", "name", nodeHostLink},
			[]string{"addr", "add", host + "/32", "dev", hl},
			[]string{"link", "set", hl, "up"},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", ns, "addr", "add", l.ip[i] + "/32", "dev", "lo"},
			[]string{"-n", ns, "link", "set", nodeHostLink, "up"},
		)
		for j := i + 1; j < n; j++ {
			steps = append(steps,
				[]string{"link", "add", peerLink(j), "netns", ns, "type", "veth", "peer", "name", peerLink(i), "netns", l.ns[j]})
		}
	}
	for i := range l.ns {
		for j := range l.ns {
			if i != j {
				steps = append(steps, []string{"-n", l.ns[i], "link", "set", peerLink(j), "up"})
			}
		}
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			return err
		}
	}
	for i := range l.ns {
		for _, b := range append([]int{HostNode}, l.others(i)...) {
			if err := ipCmd(l.routeArgs(i, b, false)...); err != nil {
				return err
			}
			if b == HostNode {
				if err := ipCmd(l.routeArgs(HostNode, i, false)...); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// others lists every node but i.
func (l *netLab) others(i int) []int {
	var o []int
	for j := range l.ns {
		if j != i {
			o = append(o, j)
		}
	}
	return o
}

// addr is host number h of the lab's subnet.
func (l *netLab) addr(h int) string { return fmt.Sprintf("10.213.%d.%d", l.k, h) }

// exec prefixes argv so it runs in node i's namespace (`ip netns exec` execs argv in place, so the PID
// the harness holds is the node's own).
func (l *netLab) exec(i int, argv []string) []string {
	return append([]string{"ip", "netns", "exec", l.ns[i]}, argv...)
}

// routeArgs are the `ip` arguments that set, in a's namespace, the route to b: over their own link, or
// a blackhole that drops everything a sends to b when cut. a or b may be HostNode.
func (l *netLab) routeArgs(a, b int, cut bool) []string {
	var dst, src, dev string
	switch {
	case a == HostNode:
		dst, src, dev = l.ip[b], l.addr(labHost), hostLink(l.k, b)
	case b == HostNode:
		dst, src, dev = l.addr(labHost), l.ip[a], nodeHostLink
	default:
		dst, src, dev = l.ip[b], l.ip[a], peerLink(b)
	}
	args := []string{"route", "replace", dst + "/32", "dev", dev, "src", src}
	if cut {
		args = []string{"route", "replace", "blackhole", dst + "/32"}
	}
	if a != HostNode {
		args = append([]string{"-n", l.ns[a]}, args...)
	}
	return args
}

// Cut drops every packet between a and b, both ways, until Heal; established connections stall and time
// out as on a real partition.
func (l *netLab) cut(a, b int) error {
	if a == b {
		return fmt.Errorf("%w: cut node %d from itself", ErrBadOption, a)
	}
	for _, x := range []int{a, b} {
		if x != HostNode && (x < 0 || x >= len(l.ns)) {
			return fmt.Errorf("cut %d-%d: %w", a, b, ErrNodeRange)
		}
	}
	key := [2]int{min(a, b), max(a, b)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cuts[key] {
		return nil
	}
	if err := ipCmd(l.routeArgs(a, b, true)...); err != nil {
		return err
	}
	if err := ipCmd(l.routeArgs(b, a, true)...); err != nil {
		_ = ipCmd(l.routeArgs(a, b, false)...)
		return err
	}
	l.cuts[key] = true
	return nil
}

// heal removes every cut.
func (l *netLab) heal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for key := range l.cuts {
		errs = append(errs, ipCmd(l.routeArgs(key[0], key[1], false)...), ipCmd(l.routeArgs(key[1], key[0], false)...))
		delete(l.cuts, key)
	}
	return errors.Join(errs...)
}

// close removes the lab: the namespaces, which take the links (both ends of each veth pair) with them,
// and the claim on the subnet. The nodes must be stopped first.
func (l *netLab) close() error {
	// Healing first turns the test namespace's blackholes back into routes over the links, which go
	// with the links.
	errs := []error{l.heal()}
	for _, ns := range l.ns {
		errs = append(errs, ipCmd("netns", "del", ns))
	}
	n := len(l.ns)
	l.ns = nil
	if l.k >= 0 {
		// The kernel removes a deleted namespace's links asynchronously: delete the test side of
		// each pair now, the claim on K last, so the next owner of K finds no link left.
		for i := n - 1; i >= 0; i-- {
			if err := deleteLink(hostLink(l.k, i)); err != nil && i == 0 {
				errs = append(errs, err)
			}
		}
		l.k = -1
	}
	return errors.Join(errs...)
}

// deleteLink deletes the link name if it exists. The kernel may remove it on its own at any moment (its
// peer's namespace was deleted), also between a check and the delete, so a delete that fails is an error
// only while the link is still there.
func deleteLink(name string) error {
	if !linkExists(name) {
		return nil
	}
	if err := linkDel(name); err != nil && linkExists(name) {
		return err
	}
	return nil
}

// linkDel deletes a link; a test makes the link vanish just before the delete through it.
var linkDel = func(name string) error { return ipCmd("link", "del", name) }

func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}

// removeNamespaces deletes every network namespace whose name starts with prefix.
func removeNamespaces(prefix string) {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			_ = ipCmd("netns", "del", e.Name())
		}
	}
}

// reapDeadLabs removes the labs whose owning process is gone (a test binary killed before its cleanup
// ran), so their subnets can be used again.
func reapDeadLabs() {
	for k := 0; k < labSubnets; k++ {
		alias, err := os.ReadFile("/sys/class/net/" + hostLink(k, 0) + "/ifalias")
		if err != nil {
			continue
		}
		pid, ok := strings.CutPrefix(strings.TrimSpace(string(alias)), "strom-lab-pid-")
		if !ok {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue
		}
		removeNamespaces(fmt.Sprintf("strom-%d-", k))
		_ = ipCmd("link", "del", hostLink(k, 0))
	}
}
