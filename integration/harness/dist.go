package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// dist guards one fetch per Kafka version per test process (fetch.sh itself is idempotent and
// serialises concurrent test binaries with flock, so this only saves the shell round trip) and the
// lookup of the java launcher.
var dist struct {
	mu   sync.Mutex
	byV  map[string]*distEntry
	java struct {
		once sync.Once
		path string
		err  error
	}
}

type distEntry struct {
	once sync.Once
	libs string
	err  error
}

// KafkaLibs returns the folder holding Apache Kafka version's jars, fetching them from Maven Central
// with integration/kafka/fetch.sh on first use (a no-op when the cache is complete). The cache root is
// $STROM_KAFKA_CACHE, default $HOME/.cache/strom.
func KafkaLibs(version string) (string, error) {
	dist.mu.Lock()
	if dist.byV == nil {
		dist.byV = map[string]*distEntry{}
	}
	e := dist.byV[version]
	if e == nil {
		e = &distEntry{}
		dist.byV[version] = e
	}
	dist.mu.Unlock()
	e.once.Do(func() { e.libs, e.err = fetchKafka(version) })
	return e.libs, e.err
}

func fetchKafka(version string) (string, error) {
	script := filepath.Join(sourceDir(), "..", "kafka", "fetch.sh")
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(context.Background(), "bash", script, version)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("fetch Kafka %s with %s: %w\n%s", version, script, err, stderr.String())
	}
	libs := strings.TrimSpace(stdout.String())
	if st, err := os.Stat(libs); err != nil || !st.IsDir() {
		return "", fmt.Errorf("fetch Kafka %s: %s printed %q, not a folder", version, script, libs)
	}
	return libs, nil
}

// Java returns the java launcher used for Kafka: $STROM_JAVA, else $JAVA_HOME/bin/java, else Debian's
// Java 17, else java on PATH. Kafka 4.x brokers need Java 17 or newer.
func Java() (string, error) {
	j := &dist.java
	j.once.Do(func() {
		cands := []string{os.Getenv("STROM_JAVA")}
		if h := os.Getenv("JAVA_HOME"); h != "" {
			cands = append(cands, filepath.Join(h, "bin", "java"))
		}
		cands = append(cands, "/usr/lib/jvm/java-17-openjdk-amd64/bin/java")
		for _, c := range cands {
			if c == "" {
				continue
			}
			if st, err := os.Stat(c); err == nil && !st.IsDir() {
				j.path = c
				return
			}
		}
		j.path, j.err = exec.LookPath("java")
		if j.err != nil {
			j.err = fmt.Errorf("no java found (set STROM_JAVA or install openjdk-17-jre-headless): %w", j.err)
		}
	})
	return j.path, j.err
}

// sourceDir is this package's source folder; the harness runs from a source checkout (go test), so
// the fetch script and the module root are found relative to it.
func sourceDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "."
	}
	return filepath.Dir(file)
}

// moduleRoot is the folder holding Strom's go.mod.
func moduleRoot() string { return filepath.Clean(filepath.Join(sourceDir(), "..", "..")) }

// kafkaMajor returns the major version number of v ("4.3.1" -> 4); 0 if unparsable.
func kafkaMajor(v string) int {
	if v == "" || v[0] < '0' || v[0] > '9' {
		return 0
	}
	n := 0
	for _, r := range v {
		if r < '0' || r > '9' {
			break
		}
		n = n*10 + int(r-'0')
	}
	return n
}

// Logging configuration written next to the jars: brokers log INFO to stdout (captured into the node's
// log file); tools log WARN to stderr so their stdout stays parseable. Kafka 4.x reads log4j2, 3.x reload4j.
const (
	brokerLog4j2 = `status = error
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
`
	toolsLog4j2 = `status = error
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = ERR
`
	brokerLog4j = `log4j.rootLogger=INFO, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
`
	toolsLog4j = `log4j.rootLogger=WARN, err
log4j.appender.err=org.apache.log4j.ConsoleAppender
log4j.appender.err.Target=System.err
log4j.appender.err.layout=org.apache.log4j.PatternLayout
log4j.appender.err.layout.ConversionPattern=[%d] %p %m (%c)%n
`
)

// logFlags returns the JVM flags selecting the broker or tools logging config for libs' Kafka version,
// writing the config files beside libs on first use.
func logFlags(libs, version string, tool bool) ([]string, error) {
	dir := filepath.Join(filepath.Dir(libs), "config")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("log config folder: %w", err)
	}
	name, body := "broker-log4j2.properties", brokerLog4j2
	if tool {
		name, body = "tools-log4j2.properties", toolsLog4j2
	}
	if kafkaMajor(version) < 4 {
		name, body = "broker-log4j.properties", brokerLog4j
		if tool {
			name, body = "tools-log4j.properties", toolsLog4j
		}
	}
	path := filepath.Join(dir, name)
	if err := writeFileAtomic(path, []byte(body)); err != nil {
		return nil, err
	}
	if kafkaMajor(version) < 4 {
		return []string{"-Dlog4j.configuration=file:" + path}, nil
	}
	return []string{"-Dlog4j2.configurationFile=file:" + path}, nil
}

// writeFileAtomic writes path unless it already has exactly body; rename makes concurrent writers safe.
func writeFileAtomic(path string, body []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, body) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(body); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
