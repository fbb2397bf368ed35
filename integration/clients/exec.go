package clients

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// cmdTimeout bounds one subprocess call of a driver (a JVM start of a Kafka CLI tool takes a few
// seconds on this class of machine; kcat well under one).
const cmdTimeout = 60 * time.Second

// runCmd runs name with args, feeding stdin, and returns stdout. A non-zero exit returns an error naming the
// command with the tail of stderr. The process is killed when ctx ends or after cmdTimeout; exec.Cmd waits
// for it, so no child outlives the call.
func runCmd(ctx context.Context, stdin io.Reader, env []string, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = stdin
	if env != nil {
		cmd.Env = env
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", name, shortArgs(args), err, tail(stderr.String(), 600))
	}
	return stdout.Bytes(), nil
}

// tail returns the last n bytes of s, trimmed, for error messages.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// shortArgs renders args for an error message without the classpath, which is long and says nothing.
func shortArgs(args []string) string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "-cp" && i+1 < len(args) {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return strings.Join(out, " ")
}
