package replicate

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestSelector(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Topics, cfg.Exclude, cfg.Rename = `orders\..*|payments`, `orders\.tmp.*`, "prefix:dc1."
	sel, err := cfg.selector()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		topic string
		want  bool
	}{
		{"orders.eu", true}, {"payments", true}, {"payments2", false}, {"orders.tmp1", false},
		{"__consumer_offsets", false}, {"strom.mirror.x.offsets", false}, {"xorders.eu", false},
	}
	for _, tt := range tests {
		if got := sel.selects(tt.topic); got != tt.want {
			t.Errorf("selects(%q) = %v, want %v", tt.topic, got, tt.want)
		}
	}
	if got := sel.dest("payments"); got != "dc1.payments" {
		t.Errorf("dest = %q", got)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.Topics = "" },
		func(c *Config) { c.Topics = "(" },
		func(c *Config) { c.Rename = "suffix:x" },
		func(c *Config) { c.Name = "a b" },
		func(c *Config) { c.Groups = "[" },
		func(c *Config) { c.RetryTimeout = 0 },
		func(c *Config) { c.RetryTimeout = -time.Second },
	} {
		c := DefaultConfig()
		c.Topics = "t"
		bad(&c)
		if _, err := c.selector(); !errors.Is(err, ErrBadConfig) {
			t.Errorf("config %+v: err %v, want ErrBadConfig", c, err)
		}
	}
}

func TestFenceCause(t *testing.T) {
	other := errors.New("broker unreachable")
	tests := []struct {
		name       string
		err        error
		openFor    time.Duration
		wantFenced bool
	}{
		{"another mirror took the id", kerr.ProducerFenced, 2 * time.Second, true},
		{"another mirror, old epoch", kerr.InvalidProducerEpoch, 50 * time.Second, true},
		{"timed out and aborted", kerr.ProducerFenced, 61 * time.Second, false},
		{"timed out, old epoch", kerr.InvalidProducerEpoch, 5 * time.Minute, false},
		{"id denied", kerr.TransactionalIDAuthorizationFailed, 0, true},
		{"id denied after a long transaction", kerr.TransactionalIDAuthorizationFailed, time.Hour, true},
		{"not a fence", other, time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fenceCause(fmt.Errorf("commit: %w", tt.err), tt.openFor, time.Minute)
			if errors.Is(err, ErrFenced) != tt.wantFenced || !errors.Is(err, tt.err) {
				t.Fatalf("fenceCause = %v; want fenced %v, wrapping %v", err, tt.wantFenced, tt.err)
			}
		})
	}
}

func TestTransactionTimeoutBounds(t *testing.T) {
	for _, tt := range []struct {
		mode    Mode
		timeout time.Duration
		ok      bool
	}{
		{ExactlyOnce, time.Minute, true}, {ExactlyOnce, time.Second, true}, {ExactlyOnce, 15 * time.Minute, true},
		{ExactlyOnce, 500 * time.Millisecond, false}, {ExactlyOnce, 16 * time.Minute, false},
		{AtLeastOnce, 0, true}, // no transactions: not used
	} {
		c := DefaultConfig()
		c.Topics, c.Mode, c.TransactionTimeout = "t", tt.mode, tt.timeout
		if _, err := c.selector(); (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrBadConfig)) {
			t.Errorf("%v %v: err %v, want ok %v", tt.mode, tt.timeout, err, tt.ok)
		}
	}
}
