package harness

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Machine describes the host for benchmark reports (CPUs, CPU model, memory, kernel, Go and Java
// versions, date), one "name: value" line each. A fact that cannot be read says "unknown" rather than
// failing the run.
func Machine() []string {
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			return "unknown"
		}
		return strings.TrimSpace(string(b))
	}
	java := "unknown"
	if bin, err := Java(); err == nil {
		var out bytes.Buffer
		cmd := exec.Command(bin, "-version")
		cmd.Stdout, cmd.Stderr = &out, &out
		if cmd.Run() == nil {
			java = strings.SplitN(strings.TrimSpace(out.String()), "\n", 2)[0]
		}
	}
	return []string{
		fmt.Sprintf("CPUs (nproc): %d", runtime.NumCPU()),
		"CPU model: " + procField(read("/proc/cpuinfo"), "model name"),
		"memory: " + procField(read("/proc/meminfo"), "MemTotal"),
		"kernel: Linux " + read("/proc/sys/kernel/osrelease"),
		"Go: " + runtime.Version(),
		"Java: " + java,
		"date: " + time.Now().UTC().Format(time.RFC3339),
	}
}

// procField returns the value of the first "key: value" line of a /proc text file, or "unknown".
func procField(text, key string) string {
	for _, l := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
