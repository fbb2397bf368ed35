package kafkacontainer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path"
	"strings"
	"testing"
)

func TestProperties(t *testing.T) {
	tests := []struct {
		name  string
		props map[string]string
		want  []string // lines that must appear
	}{
		{"defaults", nil, []string{
			"listeners=PLAINTEXT://127.0.0.1:9001,CONTROLLER://127.0.0.1:9002",
			"advertised.listeners=PLAINTEXT://127.0.0.1:9001",
			"controller.quorum.voters=1@127.0.0.1:9002",
			"log.dirs=/data",
			"offsets.topic.replication.factor=1",
		}},
		{"override", map[string]string{"num.partitions": "3", "log.dirs": "/other"}, []string{
			"num.partitions=3", "log.dirs=/other",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			for k, v := range tc.props {
				WithBrokerConfig(k, v)(&cfg)
			}
			got := properties(cfg, 9001, 9002)
			lines := strings.Split(strings.TrimSpace(got), "\n")
			for _, w := range tc.want {
				n := 0
				for _, l := range lines {
					if l == w {
						n++
					}
				}
				if n != 1 {
					t.Errorf("line %q appears %d times in\n%s", w, n, got)
				}
			}
		})
	}
}

// TestRootfsEntriesUnique checks that the root filesystem built from this machine's Java runtime has
// clean, unique paths (the engine rejects duplicates) and the files the entry script needs.
func TestRootfsEntriesUnique(t *testing.T) {
	if _, err := os.Stat(DefaultJavaHome); err != nil {
		t.Fatalf("java runtime: %v (install openjdk-17-jre-headless)", err)
	}
	libs := t.TempDir()
	if err := os.WriteFile(libs+"/a.jar", []byte("jar"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := collect(context.Background(), libs, DefaultJavaHome)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeRootfs(&buf, files); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if path.Clean(name) != name || seen[name] {
			t.Errorf("entry %q: unclean or duplicate", h.Name)
		}
		seen[name] = true
	}
	for _, want := range []string{"bin/sh", "jvm/bin/java", "jvm/lib/server/libjvm.so", "kafka/libs/a.jar",
		"kafka/start.sh", "kafka/config/log4j2.properties", "tmp", "data"} {
		if !seen[want] {
			t.Errorf("rootfs lacks %s", want)
		}
	}
}
