package harness

import "testing"

func TestProcField(t *testing.T) {
	text := "processor\t: 0\nmodel name\t: Test CPU @ 2GHz\nMemTotal:  100 kB\n"
	for _, tt := range []struct{ key, want string }{
		{"model name", "Test CPU @ 2GHz"}, {"MemTotal", "100 kB"}, {"absent", "unknown"},
	} {
		if got := procField(text, tt.key); got != tt.want {
			t.Errorf("procField(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}
