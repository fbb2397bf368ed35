package replicate

import (
	"errors"
	"testing"
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
	} {
		c := DefaultConfig()
		c.Topics = "t"
		bad(&c)
		if _, err := c.selector(); !errors.Is(err, ErrBadConfig) {
			t.Errorf("config %+v: err %v, want ErrBadConfig", c, err)
		}
	}
}
