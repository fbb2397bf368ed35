// Package stromcontainer runs `strom serve` in a container with testcontainers-go, for tests of programs
// that want a Kafka-protocol broker without installing anything:
//
//	c, err := stromcontainer.Run(ctx, stromcontainer.WithBinary("bin/strom"))
//	...
//	defer c.Terminate(ctx)
//	client, _ := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()))
//
// No registry is involved: the image is built locally by importing a root filesystem that holds only
// the static strom binary (BuildImage). The container uses host networking and listens on a free port
// of 127.0.0.1, so clients reach it exactly as they reach a local process and the broker's advertised
// address needs no mapping. Readiness is the log line `strom ready listen=`, printed once the listener
// is bound (port-based wait strategies cannot see a host-network container's ports).
//
// With Ryuk disabled (TESTCONTAINERS_RYUK_DISABLED=true, needed where no registry is reachable), a
// container outlives a test binary killed with -9; Terminate or testcontainers.CleanupContainer end it.
package stromcontainer

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// DefaultImage is the image reference Run uses and BuildImage writes unless told otherwise.
const DefaultImage = "strom:local"

// ReadyLine is what `strom serve` logs once its Kafka listener accepts connections.
const ReadyLine = "strom ready listen="

// Errors of this package; match with errors.Is.
var (
	// ErrImport reports that the Docker engine refused to import the image.
	ErrImport = errors.New("stromcontainer: image import failed")
)

// Option configures Run.
type Option func(*config)

type config struct {
	image          string
	binary         string // if set, BuildImage(binary, image) runs first
	args           []string
	startupTimeout time.Duration
}

func defaultConfig() config {
	return config{image: DefaultImage, startupTimeout: 60 * time.Second}
}

// WithImage names the image to run (default DefaultImage).
func WithImage(ref string) Option { return func(c *config) { c.image = ref } }

// WithBinary makes Run build the image from this static (CGO_ENABLED=0) strom binary first.
func WithBinary(path string) Option { return func(c *config) { c.binary = path } }

// WithArgs appends flags to `strom serve`.
func WithArgs(args ...string) Option { return func(c *config) { c.args = append(c.args, args...) } }

// WithStartupTimeout bounds the wait for the ready line (default 60 s).
func WithStartupTimeout(d time.Duration) Option { return func(c *config) { c.startupTimeout = d } }

// Container is a running Strom container.
type Container struct {
	testcontainers.Container
	bootstrap string
}

// Bootstrap returns the broker's host:port on 127.0.0.1.
func (c *Container) Bootstrap() string { return c.bootstrap }

// Run starts `strom serve` in a container on free 127.0.0.1 ports (host networking) with its data in
// the container's /data, and returns once it logged ReadyLine. On error, a container that was created
// is terminated before returning.
func Run(ctx context.Context, opts ...Option) (*Container, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.binary != "" {
		if err := BuildImage(ctx, cfg.binary, cfg.image); err != nil {
			return nil, err
		}
	}
	listen, err := freePort()
	if err != nil {
		return nil, err
	}
	raftListen, err := freePort()
	if err != nil {
		return nil, err
	}
	bootstrap := fmt.Sprintf("127.0.0.1:%d", listen)
	cmd := append([]string{"serve", "--data-dir", "/data", "--listen", bootstrap,
		"--raft-listen", fmt.Sprintf("127.0.0.1:%d", raftListen)}, cfg.args...)
	ctr, err := testcontainers.Run(ctx, cfg.image,
		testcontainers.WithEntrypoint("/strom"),
		testcontainers.WithCmd(cmd...),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.NetworkMode = "host" }),
		testcontainers.WithWaitStrategy(wait.ForLog(ReadyLine).WithStartupTimeout(cfg.startupTimeout)),
	)
	if err != nil {
		if ctr != nil {
			_ = testcontainers.TerminateContainer(ctr)
		}
		return nil, fmt.Errorf("run %s: %w", cfg.image, err)
	}
	return &Container{Container: ctr, bootstrap: bootstrap}, nil
}

// BuildImage imports a root filesystem holding only binary (as /strom) and an empty /data as image ref.
// The binary must be static: the image has no libc. Importing the same binary again is cheap.
func BuildImage(ctx context.Context, binary, ref string) error {
	rootfs, err := rootfsTar(binary)
	if err != nil {
		return err
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("docker engine: %w", err)
	}
	defer cli.Close()
	res, err := cli.ImageImport(ctx, client.ImageImportSource{Source: bytes.NewReader(rootfs), SourceName: "-"}, ref,
		client.ImageImportOptions{Changes: []string{`ENTRYPOINT ["/strom"]`, `CMD ["serve"]`}})
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrImport, ref, err)
	}
	defer res.Close()
	// The engine streams JSON messages; a failure arrives as one with an error field, not as an HTTP error.
	dec := json.NewDecoder(res)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("%w: %s: reading the engine's answer: %w", ErrImport, ref, err)
		}
		if msg.Error != "" {
			return fmt.Errorf("%w: %s: %s", ErrImport, ref, msg.Error)
		}
	}
}

// rootfsTar returns a tar stream of the image's root filesystem: /strom and an empty /data.
func rootfsTar(binary string) ([]byte, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("read strom binary: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	hdrs := []struct {
		h    tar.Header
		body []byte
	}{
		{tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now}, nil},
		{tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: now}, nil},
		{tar.Header{Name: "strom", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin)), ModTime: now}, bin},
	}
	for _, e := range hdrs {
		if err := tw.WriteHeader(&e.h); err != nil {
			return nil, fmt.Errorf("rootfs tar: %w", err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("rootfs tar: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("rootfs tar: %w", err)
	}
	return buf.Bytes(), nil
}

// freePort returns a TCP port free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
