package replicate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestEndsRun pins which failed sessions end Run. Before anything was copied every error does; after,
// only the errors no retry heals. The outage rows are what a source cut off for longer than the
// clients' retry timeout produced in TestMirrorSourceOutage: the session copying when the outage began
// failed in topic discovery, the next one in its own list topics, and that second failure ended a
// mirror that had been copying, where it must wait the outage out.
func TestEndsRun(t *testing.T) {
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EINVAL)}
	outage := fmt.Errorf("source cluster: list topics: unable to dial: %w", dialErr)
	tests := []struct {
		name    string
		err     error
		copying bool
		want    bool
	}{
		{"unreachable before the first copy", outage, false, true},
		{"no topic before the first copy", fmt.Errorf("source cluster: %w", ErrNoTopics), false, true},
		{"source outage in a later session's setup", outage, true, false},
		{"source outage during discovery", fmt.Errorf("source cluster: list topics: %w", context.DeadlineExceeded), true, false},
		{"destination not leader", fmt.Errorf("destination cluster: produce: %w", kerr.NotLeaderForPartition), true, false},
		{"topics gone for a while", fmt.Errorf("source cluster: %w", ErrNoTopics), true, false},
		{"fenced", fmt.Errorf("destination cluster: commit transaction: %w: %w", ErrFenced, kerr.ProducerFenced), true, true},
		{"bad config", fmt.Errorf("offset map: %w", ErrBadConfig), true, true},
		{"fewer partitions", fmt.Errorf("topic t: %w", ErrFewerPartitions), true, true},
		{"plain error after copying", errors.New("anything"), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := endsRun(tt.err, tt.copying); got != tt.want {
				t.Fatalf("endsRun(%v, copying %v) = %v, want %v", tt.err, tt.copying, got, tt.want)
			}
		})
	}
}
