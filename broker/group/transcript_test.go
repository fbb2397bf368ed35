package group

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestTranscripts replays the data-driven transcripts in testdata/*.txt.
// Each block is a command line, a "----" line, and the expected output up
// to a blank line: every answer delivered while the command ran (joins and
// syncs that were waiting included), in order. Commands:
//
//	join LABEL member=ID client=C [protocols=a,b] [instance=I] [v3]
//	sync LABEL member=ID gen=N [assign=ID:VAL,...] [instance=I]
//	heartbeat member=ID gen=N [instance=I]
//	leave member=ID[,ID...] [instance=I]
//	advance DURATION          (fires timers)
//	state                     (state, generation, leader, members)
func TestTranscripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no transcripts in testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runTranscript(t, f) })
	}
}

func runTranscript(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	cfg := DefaultConfig()
	cfg.NewMemberID = func(c string) string { n++; return fmt.Sprintf("%s-%d", c, n) }
	now := time.Unix(1_000_000, 0)
	g := New("g", cfg, now)
	var out []string
	emitJoin := func(label string) func(JoinResult) {
		return func(r JoinResult) {
			s := fmt.Sprintf("%s: join %s member=%s", label, errName(r.Err), r.MemberID)
			if r.Err == nil {
				var ms []string
				for _, m := range r.Members {
					ms = append(ms, m.MemberID)
				}
				s += fmt.Sprintf(" gen=%d protocol=%s leader=%s", r.Generation, r.Protocol, r.Leader)
				if len(ms) > 0 {
					s += " members=" + strings.Join(ms, ",")
				}
			}
			out = append(out, s)
		}
	}
	emitSync := func(label string) func(SyncResult) {
		return func(r SyncResult) {
			s := fmt.Sprintf("%s: sync %s", label, errName(r.Err))
			if r.Err == nil {
				s += " assignment=" + string(r.Assignment)
			}
			out = append(out, s)
		}
	}
	blocks := strings.Split(strings.TrimSpace(string(data)), "\n\n")
	for _, blk := range blocks {
		lines := strings.Split(blk, "\n")
		for len(lines) > 0 && strings.HasPrefix(lines[0], "#") {
			lines = lines[1:]
		}
		if len(lines) == 0 {
			continue
		}
		if len(lines) < 2 || lines[1] != "----" {
			t.Fatalf("%s: block without ---- after %q", path, lines[0])
		}
		cmd, want := lines[0], strings.Join(lines[2:], "\n")
		f := strings.Fields(cmd)
		args := map[string]string{}
		for _, a := range f[1:] {
			k, v, _ := strings.Cut(a, "=")
			args[k] = v
		}
		var inst *string
		if v, ok := args["instance"]; ok {
			inst = &v
		}
		out = out[:0]
		switch f[0] {
		case "join":
			req := JoinRequest{MemberID: args["member"], InstanceID: inst, ClientID: args["client"], ProtocolType: "consumer",
				SessionTimeout: 10 * time.Second, RebalanceTimeout: 30 * time.Second, RequireKnownMemberID: true}
			if _, ok := args["v3"]; ok {
				req.RequireKnownMemberID = false
			}
			ps := args["protocols"]
			if ps == "" {
				ps = "range"
			}
			for _, p := range strings.Split(ps, ",") {
				req.Protocols = append(req.Protocols, Protocol{Name: p, Metadata: []byte(p)})
			}
			g.Join(now, req, emitJoin(f[1]))
		case "sync":
			var gen int
			fmt.Sscan(args["gen"], &gen)
			assign := map[string][]byte{}
			if a := args["assign"]; a != "" {
				for _, kv := range strings.Split(a, ",") {
					k, v, _ := strings.Cut(kv, ":")
					assign[k] = []byte(v)
				}
			}
			g.Sync(now, SyncRequest{MemberID: args["member"], InstanceID: inst, Generation: int32(gen), Assignments: assign}, emitSync(f[1]))
		case "heartbeat":
			var gen int
			fmt.Sscan(args["gen"], &gen)
			out = append(out, "heartbeat "+errName(g.Heartbeat(now, args["member"], inst, int32(gen))))
		case "leave":
			var ms []LeaveMember
			for _, id := range strings.Split(args["member"], ",") {
				ms = append(ms, LeaveMember{MemberID: id, InstanceID: inst})
			}
			top, errs := g.Leave(now, ms)
			s := "leave " + errName(top)
			for _, e := range errs {
				s += " " + errName(e)
			}
			out = append(out, s)
		case "advance":
			d, err := time.ParseDuration(f[1])
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			now = now.Add(d)
			g.Tick(now)
		case "state":
			ids := append([]string(nil), g.order...)
			sort.Strings(ids)
			out = append(out, fmt.Sprintf("%v gen=%d leader=%s members=%s", g.State(), g.Generation(), g.Leader(), strings.Join(ids, ",")))
		default:
			t.Fatalf("%s: unknown command %q", path, cmd)
		}
		if got := strings.Join(out, "\n"); got != want {
			t.Errorf("%s: %s\n got:\n%s\nwant:\n%s", path, cmd, got, want)
		}
	}
}

func errName(e interface{ Error() string }) string {
	if e == nil || fmt.Sprint(e) == "<nil>" {
		return "OK"
	}
	s := e.Error()
	if i := strings.IndexByte(s, ':'); i > 0 {
		s = s[:i]
	}
	return s
}
