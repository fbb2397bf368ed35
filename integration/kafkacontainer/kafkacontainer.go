// Package kafkacontainer runs a single-node Apache Kafka (KRaft, combined broker+controller) in a
// container with testcontainers-go, as the reference broker for tests that compare Strom with Kafka in
// the same setting as stromcontainer:
//
//	c, err := kafkacontainer.Run(ctx)
//	...
//	defer c.Terminate(ctx)
//	client, _ := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()))
//
// No registry is involved: BuildImage imports a root filesystem made from this machine's Debian Java 17
// runtime (symlinks resolved, plus the shared libraries ldd lists for it), the host's /bin/dash as
// /bin/sh, the cached Kafka jars (harness.KafkaLibs) and an entry script that formats storage and then
// execs kafka.Kafka. The image is tagged by a hash of those inputs, so an unchanged machine reuses it.
// The container uses host networking and listens on free 127.0.0.1 ports; readiness is ReadyLine.
package kafkacontainer

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/stromhq/strom/integration/harness"
)

// DefaultVersion is the Kafka version Run uses unless told otherwise.
const DefaultVersion = "4.3.1"

// DefaultJavaHome is the Java runtime copied into the image: Debian's OpenJDK 17 (Kafka 4.x needs 17+).
const DefaultJavaHome = "/usr/lib/jvm/java-17-openjdk-amd64"

// ReadyLine is what the Kafka 4.x broker logs once its listeners accept connections.
const ReadyLine = "Kafka Server started"

// imageRepo is the repository part of built image references; the tag is version-hash.
const imageRepo = "strom-kafka"

// Errors of this package; match with errors.Is.
var (
	// ErrImport reports that the Docker engine refused to import the image.
	ErrImport = errors.New("kafkacontainer: image import failed")
	// ErrRootfs reports that the image's root filesystem could not be assembled from the host.
	ErrRootfs = errors.New("kafkacontainer: cannot assemble root filesystem")
)

// Option configures Run.
type Option func(*config)

type config struct {
	version        string
	javaHome       string
	heap           string
	startupTimeout time.Duration
	props          map[string]string
}

// defaultConfig holds every default of Run in one place.
func defaultConfig() config {
	return config{version: DefaultVersion, javaHome: DefaultJavaHome, heap: "512m",
		startupTimeout: 90 * time.Second, props: map[string]string{}}
}

// WithVersion selects the Kafka version (4.x; default DefaultVersion).
func WithVersion(v string) Option { return func(c *config) { c.version = v } }

// WithJavaHome selects the Java runtime copied into the image (default DefaultJavaHome).
func WithJavaHome(dir string) Option { return func(c *config) { c.javaHome = dir } }

// WithHeap sets the broker's -Xmx (default 512m).
func WithHeap(h string) Option { return func(c *config) { c.heap = h } }

// WithBrokerConfig overrides one server.properties entry.
func WithBrokerConfig(key, value string) Option { return func(c *config) { c.props[key] = value } }

// WithStartupTimeout bounds the wait for the ready line (default 90 s; a JVM start plus storage
// format on two busy cores takes 10-30 s).
func WithStartupTimeout(d time.Duration) Option { return func(c *config) { c.startupTimeout = d } }

// Container is a running Kafka container.
type Container struct {
	testcontainers.Container
	bootstrap string
	image     string
}

// Bootstrap returns the broker's host:port on 127.0.0.1.
func (c *Container) Bootstrap() string { return c.bootstrap }

// Image returns the image reference the container runs.
func (c *Container) Image() string { return c.image }

// entryScript writes the properties passed in the environment, formats storage (a fresh container has
// an empty /data) and replaces itself with the broker so the container's main process is the JVM.
const entryScript = `#!/bin/sh
set -e
printf '%s\n' "$KAFKA_PROPERTIES" > /tmp/server.properties
/jvm/bin/java -XX:-UsePerfData -XX:TieredStopAtLevel=1 -Xshare:auto -Djava.awt.headless=true \
  -Dlog4j2.configurationFile=file:/kafka/config/log4j2.properties -cp '/kafka/libs/*' \
  kafka.tools.StorageTool format "--cluster-id=$KAFKA_CLUSTER_ID" --config /tmp/server.properties
exec /jvm/bin/java -XX:-UsePerfData -Xmx"$KAFKA_HEAP" -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
  -Dlog4j2.configurationFile=file:/kafka/config/log4j2.properties -cp '/kafka/libs/*' \
  kafka.Kafka /tmp/server.properties
`

// log4j2 sends INFO to stdout, where the wait strategy looks for ReadyLine.
const log4j2 = `status = error
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
`

// Run builds the image if needed, starts a single combined KRaft node on free 127.0.0.1 ports (host
// networking) and returns once it logged ReadyLine. On error, a container that was created is
// terminated before returning.
func Run(ctx context.Context, opts ...Option) (*Container, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	ref, err := BuildImage(ctx, cfg.version, cfg.javaHome)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cport, err := freePort()
	if err != nil {
		return nil, err
	}
	clusterID, err := newClusterID()
	if err != nil {
		return nil, err
	}
	bootstrap := fmt.Sprintf("127.0.0.1:%d", port)
	ctr, err := testcontainers.Run(ctx, ref,
		testcontainers.WithEntrypoint("/bin/sh", "/kafka/start.sh"),
		testcontainers.WithEnv(map[string]string{
			"KAFKA_PROPERTIES": properties(cfg, port, cport),
			"KAFKA_CLUSTER_ID": clusterID,
			"KAFKA_HEAP":       cfg.heap,
		}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.NetworkMode = "host" }),
		testcontainers.WithWaitStrategy(wait.ForLog(ReadyLine).WithStartupTimeout(cfg.startupTimeout)),
	)
	if err != nil {
		if ctr != nil {
			_ = testcontainers.TerminateContainer(ctr)
		}
		return nil, fmt.Errorf("run %s: %w", ref, err)
	}
	return &Container{Container: ctr, bootstrap: bootstrap, image: ref}, nil
}

// properties renders server.properties for one combined node: defaults sized for a single node and two
// cores, then the caller's overrides, sorted for a stable file.
func properties(cfg config, port, cport int) string {
	p := map[string]string{
		"process.roles":                            "broker,controller",
		"node.id":                                  "1",
		"controller.quorum.voters":                 fmt.Sprintf("1@127.0.0.1:%d", cport),
		"listeners":                                fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", port, cport),
		"advertised.listeners":                     fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", port),
		"controller.listener.names":                "CONTROLLER",
		"listener.security.protocol.map":           "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"inter.broker.listener.name":               "PLAINTEXT",
		"log.dirs":                                 "/data",
		"num.partitions":                           "1",
		"default.replication.factor":               "1",
		"offsets.topic.replication.factor":         "1",
		"offsets.topic.num.partitions":             "10",
		"transaction.state.log.num.partitions":     "10",
		"transaction.state.log.replication.factor": "1",
		"transaction.state.log.min.isr":            "1",
		"group.initial.rebalance.delay.ms":         "0",
	}
	for k, v := range cfg.props {
		p[k] = v
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, p[k])
	}
	return b.String()
}

// file is one regular file of the root filesystem: where it goes and where its bytes come from.
type file struct {
	dst  string // path in the image, without leading slash
	src  string // host path, symlinks resolved
	mode fs.FileMode
	size int64
	body []byte // used instead of src when non-nil
}

// BuildImage imports the Kafka image for version with the Java runtime at javaHome unless an image with
// the same inputs exists, and returns its reference. Building takes a few seconds (about 300 MB).
func BuildImage(ctx context.Context, version, javaHome string) (string, error) {
	libs, err := harness.KafkaLibs(version)
	if err != nil {
		return "", err
	}
	files, err := collect(ctx, libs, javaHome)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%s\x00%o\x00%d\x00", f.dst, f.src, f.mode, f.size)
		if f.body != nil {
			h.Write(f.body)
		} else if st, err := os.Stat(f.src); err == nil {
			fmt.Fprintf(h, "%d\x00", st.ModTime().UnixNano())
		}
	}
	ref := fmt.Sprintf("%s:%s-%s", imageRepo, version, hex.EncodeToString(h.Sum(nil))[:12])

	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return "", fmt.Errorf("docker engine: %w", err)
	}
	defer cli.Close()
	if _, err := cli.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	}

	// The tar is streamed: the runtime and jars are too large to hold twice in memory for no reason.
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeRootfs(pw, files)) }()
	defer pr.Close() // unblocks the writer goroutine if the import returns early
	res, err := cli.ImageImport(ctx, client.ImageImportSource{Source: pr, SourceName: "-"}, ref,
		client.ImageImportOptions{Changes: []string{`ENTRYPOINT ["/bin/sh", "/kafka/start.sh"]`}})
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrImport, ref, err)
	}
	defer res.Close()
	// The engine streams JSON messages; a failure arrives as one with an error field, not as an HTTP error.
	dec := json.NewDecoder(res)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return ref, nil
		} else if err != nil {
			return "", fmt.Errorf("%w: %s: reading the engine's answer: %w", ErrImport, ref, err)
		}
		if msg.Error != "" {
			return "", fmt.Errorf("%w: %s: %s", ErrImport, ref, msg.Error)
		}
	}
}

// javaSkip lists parts of a JDK that a broker never loads, left out of the image to keep it small.
var javaSkip = map[string]bool{"jmods": true, "include": true, "man": true, "docs": true, "legal": true,
	"lib/src.zip": true, "lib/ct.sym": true}

// collect lists the image's files, sorted by destination: the Java runtime under /jvm, its shared
// libraries at their host paths, /bin/sh, the jars under /kafka/libs, and the script and log config.
func collect(ctx context.Context, libs, javaHome string) ([]file, error) {
	var files []file
	seen := map[string]bool{}
	add := func(f file) {
		if !seen[f.dst] {
			seen[f.dst] = true
			files = append(files, f)
		}
	}
	// addTree copies the regular files under root (following symlinks) to dst; dangling links are
	// skipped, as Debian's JDK links optional desktop libraries that a headless install lacks.
	addTree := func(root, dst string, skip map[string]bool) error {
		return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			if skip[rel] {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			real, err := filepath.EvalSymlinks(path)
			if err != nil {
				return nil
			}
			st, err := os.Stat(real)
			if err != nil || !st.Mode().IsRegular() {
				return nil
			}
			add(file{dst: filepath.ToSlash(filepath.Join(dst, rel)), src: real, mode: st.Mode().Perm(), size: st.Size()})
			return nil
		})
	}
	if err := addTree(javaHome, "jvm", javaSkip); err != nil {
		return nil, fmt.Errorf("%w: java runtime %s: %w", ErrRootfs, javaHome, err)
	}
	if err := addTree(libs, "kafka/libs", nil); err != nil {
		return nil, fmt.Errorf("%w: kafka jars %s: %w", ErrRootfs, libs, err)
	}
	sh, err := exec.LookPath("dash")
	if err != nil {
		sh = "/bin/sh"
	}
	shReal, err := filepath.EvalSymlinks(sh)
	if err != nil {
		return nil, fmt.Errorf("%w: shell: %w", ErrRootfs, err)
	}
	st, err := os.Stat(shReal)
	if err != nil {
		return nil, fmt.Errorf("%w: shell: %w", ErrRootfs, err)
	}
	add(file{dst: "bin/sh", src: shReal, mode: 0o755, size: st.Size()})

	// Shared libraries of the launcher, the JVM, the JDK's own libraries and the shell.
	elves := []string{filepath.Join(javaHome, "bin", "java"), filepath.Join(javaHome, "lib", "server", "libjvm.so"), shReal}
	sos, _ := filepath.Glob(filepath.Join(javaHome, "lib", "*.so"))
	elves = append(elves, sos...)
	deps, err := sharedLibs(ctx, elves)
	if err != nil {
		return nil, err
	}
	for _, d := range deps {
		if strings.HasPrefix(d, filepath.Clean(javaHome)+"/") {
			continue // already under /jvm, where the launcher looks relative to itself
		}
		real, err := filepath.EvalSymlinks(d)
		if err != nil {
			continue
		}
		st, err := os.Stat(real)
		if err != nil {
			continue
		}
		add(file{dst: strings.TrimPrefix(d, "/"), src: real, mode: st.Mode().Perm(), size: st.Size()})
	}
	add(file{dst: "kafka/start.sh", mode: 0o755, body: []byte(entryScript), size: int64(len(entryScript))})
	add(file{dst: "kafka/config/log4j2.properties", mode: 0o644, body: []byte(log4j2), size: int64(len(log4j2))})
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.dst, b.dst) })
	return files, nil
}

// sharedLibs runs ldd on each ELF file and returns the absolute library paths it resolved (libraries it
// reports "not found" belong to optional desktop parts of the JDK and are left out).
func sharedLibs(ctx context.Context, elves []string) ([]string, error) {
	set := map[string]bool{}
	for _, e := range elves {
		out, err := exec.CommandContext(ctx, "ldd", e).Output()
		if err != nil {
			continue // "not a dynamic executable" and the like: nothing to add
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			for _, w := range strings.Fields(sc.Text()) {
				// Paths may hold ".." (the launcher's $ORIGIN/../lib); tar entries must be clean and unique.
				if strings.HasPrefix(w, "/") {
					set[filepath.Clean(w)] = true
				}
			}
		}
	}
	if len(set) == 0 {
		return nil, fmt.Errorf("%w: ldd found no shared libraries for %s", ErrRootfs, elves[0])
	}
	libs := make([]string, 0, len(set))
	for l := range set {
		libs = append(libs, l)
	}
	slices.Sort(libs)
	return libs, nil
}

// writeRootfs writes files as a tar stream, with their parent folders and a world-writable /tmp and
// /data, and closes the tar (not w).
func writeRootfs(w io.Writer, files []file) error {
	tw := tar.NewWriter(w)
	now := time.Now()
	dirs := map[string]bool{}
	mkdir := func(d string, mode int64) error {
		if d == "." || d == "" || dirs[d] {
			return nil
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: mode, ModTime: now})
	}
	var parents func(d string) error
	parents = func(d string) error {
		if d == "." || dirs[d] {
			return nil
		}
		if err := parents(filepath.Dir(d)); err != nil {
			return err
		}
		return mkdir(d, 0o755)
	}
	for _, d := range []string{"tmp", "data"} {
		if err := mkdir(d, 0o1777); err != nil {
			return fmt.Errorf("rootfs tar: %w", err)
		}
	}
	for _, f := range files {
		if err := parents(filepath.Dir(f.dst)); err != nil {
			return fmt.Errorf("rootfs tar: %w", err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.dst, Typeflag: tar.TypeReg, Mode: int64(f.mode), Size: f.size, ModTime: now}); err != nil {
			return fmt.Errorf("rootfs tar %s: %w", f.dst, err)
		}
		if f.body != nil {
			if _, err := tw.Write(f.body); err != nil {
				return fmt.Errorf("rootfs tar %s: %w", f.dst, err)
			}
			continue
		}
		if err := copyFile(tw, f); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("rootfs tar: %w", err)
	}
	return nil
}

// copyFile copies exactly f.size bytes of f.src, the size its tar header promised.
func copyFile(w io.Writer, f file) error {
	in, err := os.Open(f.src)
	if err != nil {
		return fmt.Errorf("rootfs %s: %w", f.src, err)
	}
	defer in.Close()
	if _, err := io.CopyN(w, in, f.size); err != nil {
		return fmt.Errorf("rootfs %s: %w", f.src, err)
	}
	return nil
}

// newClusterID returns a random Kafka cluster id that does not start with '-' (StorageTool would take
// it for an option).
func newClusterID() (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("cluster id: %w", err)
		}
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id, nil
		}
	}
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
