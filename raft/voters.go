package raft

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	hraft "github.com/hashicorp/raft"
)

// Voter is one member of a static voter set: a node id and the address of
// its raft transport (what peers dial).
type Voter struct {
	ID   int32
	Addr string
}

// String formats v as Kafka's controller.quorum.voters entry ID@HOST:PORT.
func (v Voter) String() string { return strconv.Itoa(int(v.ID)) + "@" + v.Addr }

// ParseVoters parses Kafka's controller.quorum.voters format: a
// comma-separated list of ID@HOST:PORT, where HOST:PORT is the node's raft
// transport address. Ids must be non-negative and unique, addresses must
// have a host and a numeric port and be unique. An empty string gives an
// empty list (no static voters). Errors wrap ErrInvalidVoters.
func ParseVoters(s string) ([]Voter, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []Voter
	ids := map[int32]bool{}
	addrs := map[string]bool{}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		idStr, addr, ok := strings.Cut(entry, "@")
		if !ok {
			return nil, fmt.Errorf("%w: %q is not ID@HOST:PORT", ErrInvalidVoters, entry)
		}
		id, err := strconv.ParseInt(idStr, 10, 32)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("%w: %q: node id %q is not a non-negative integer", ErrInvalidVoters, entry, idStr)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: address: %v", ErrInvalidVoters, entry, err)
		}
		if host == "" {
			return nil, fmt.Errorf("%w: %q: address has no host", ErrInvalidVoters, entry)
		}
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
			return nil, fmt.Errorf("%w: %q: port %q is not in 1..65535", ErrInvalidVoters, entry, port)
		}
		if ids[int32(id)] {
			return nil, fmt.Errorf("%w: node id %d listed twice", ErrInvalidVoters, id)
		}
		if addrs[addr] {
			return nil, fmt.Errorf("%w: address %s listed twice", ErrInvalidVoters, addr)
		}
		ids[int32(id)], addrs[addr] = true, true
		out = append(out, Voter{ID: int32(id), Addr: addr})
	}
	return out, nil
}

// FormatVoters is the inverse of ParseVoters.
func FormatVoters(vs []Voter) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return strings.Join(parts, ",")
}

// voterFor returns the entry of id in vs.
func voterFor(vs []Voter, id int32) (Voter, bool) {
	for _, v := range vs {
		if v.ID == id {
			return v, true
		}
	}
	return Voter{}, false
}

// validateVoters checks a voter list built without ParseVoters: ids and
// addresses unique and self listed.
func validateVoters(vs []Voter, self int32) error {
	ids := map[int32]bool{}
	addrs := map[string]bool{}
	for _, v := range vs {
		if v.ID < 0 || v.Addr == "" {
			return fmt.Errorf("%w: bad entry %q", ErrInvalidVoters, v.String())
		}
		if ids[v.ID] || addrs[v.Addr] {
			return fmt.Errorf("%w: %s repeats an id or address", ErrInvalidVoters, FormatVoters(vs))
		}
		ids[v.ID], addrs[v.Addr] = true, true
	}
	if !ids[self] {
		return fmt.Errorf("%w: node id %d is not among the voters %s", ErrInvalidVoters, self, FormatVoters(vs))
	}
	return nil
}

// configVoters returns the voters of a raft configuration sorted by id.
func configVoters(c hraft.Configuration) []Voter {
	var out []Voter
	for _, s := range c.Servers {
		if id, ok := parseServerID(s.ID); ok && s.Suffrage == hraft.Voter {
			out = append(out, Voter{ID: id, Addr: string(s.Address)})
		}
	}
	return sortedVoters(out)
}

// sortedVoters returns a copy of vs sorted by id.
func sortedVoters(vs []Voter) []Voter {
	out := slices.Clone(vs)
	slices.SortFunc(out, func(a, b Voter) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
