package clients

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// scriptTimeout bounds one whole script run (the scenario inside does its own bounded waits).
const scriptTimeout = 150 * time.Second

// runScript runs a scenario script: the scenario as JSON on stdin, one result line per feature on stdout.
// A script that reported nothing and failed is a runner error; one that died midway keeps what it reported
// and the missing features fail with the exit status and the tail of stderr.
func runScript(ctx context.Context, sc *scenario, dir string, env []string, name string, args ...string) ([]Result, error) {
	in, err := json.Marshal(sc)
	if err != nil {
		return nil, fmt.Errorf("encode scenario: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	rs, perr := parseReport(sc.Client, &stdout)
	if perr != nil {
		return nil, fmt.Errorf("%s: %w (stderr: %s)", name, perr, tail(stderr.String(), 600))
	}
	if runErr == nil {
		return rs, nil
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("%s %s: %w: %s", name, shortArgs(args), runErr, tail(stderr.String(), 1000))
	}
	for _, f := range Features() {
		if !slices.ContainsFunc(rs, func(r Result) bool { return r.Feature == f }) {
			rs = append(rs, Result{Client: sc.Client, Feature: f, Outcome: Fail,
				Detail: fmt.Sprintf("runner died before reporting (%v): %s", runErr, tail(stderr.String(), 300))})
		}
	}
	return rs, nil
}

// runPython runs python/scenario.py with the library lib ("kafka-python" or "confluent-kafka-python").
func runPython(lib string) runner {
	return func(ctx context.Context, cfg *config, sc *scenario) ([]Result, error) {
		if _, err := exec.LookPath(cfg.python); err != nil {
			return nil, fmt.Errorf("%w: %s not found: %v", ErrUnavailable, cfg.python, err)
		}
		module := map[string]string{"kafka-python": "kafka", "confluent-kafka-python": "confluent_kafka"}[lib]
		if _, err := runCmd(ctx, nil, nil, cfg.python, "-c", "import "+module); err != nil {
			return nil, fmt.Errorf("%w: %s cannot import %s (apt-get install -y python3-kafka python3-confluent-kafka): %v",
				ErrUnavailable, cfg.python, module, err)
		}
		dir := filepath.Join(cfg.scriptsDir, "python")
		return runScript(ctx, sc, dir, nil, cfg.python, filepath.Join(dir, "scenario.py"), lib, cfg.bootstrap)
	}
}

// runNode runs node/scenario.js with the kafkajs pinned in node/package-lock.json (installed there by
// `npm ci`, which provisioning does).
func runNode(ctx context.Context, cfg *config, sc *scenario) ([]Result, error) {
	if _, err := exec.LookPath(cfg.node); err != nil {
		return nil, fmt.Errorf("%w: node not found: %v", ErrUnavailable, err)
	}
	dir := filepath.Join(cfg.scriptsDir, "node")
	for _, pkg := range []string{"kafkajs", "kafkajs-snappy"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			return nil, fmt.Errorf("%w: %s not installed (run `npm ci` in %s): %v", ErrUnavailable, pkg, dir, err)
		}
	}
	return runScript(ctx, sc, dir, nil, cfg.node, filepath.Join(dir, "scenario.js"), cfg.bootstrap)
}
