package clients

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// kafkaLibs returns the folder of Apache Kafka jars: cfg.kafkaLibs if set ($STROM_KAFKA_LIBS by default),
// else the newest complete kafka-VERSION/libs in $STROM_KAFKA_CACHE (default ~/.cache/strom), the layout
// integration/kafka/fetch.sh writes (a .complete marker beside libs once every jar is in place).
func kafkaLibs(cfg *config) (string, error) {
	if cfg.kafkaLibs != "" {
		if _, err := os.Stat(filepath.Join(cfg.kafkaLibs)); err != nil {
			return "", fmt.Errorf("%w: Kafka libs %s: %v", ErrUnavailable, cfg.kafkaLibs, err)
		}
		return cfg.kafkaLibs, nil
	}
	cache := os.Getenv("STROM_KAFKA_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("%w: no Kafka libs: set STROM_KAFKA_LIBS (%v)", ErrUnavailable, err)
		}
		cache = filepath.Join(home, ".cache", "strom")
	}
	dirs, _ := filepath.Glob(filepath.Join(cache, "kafka-*"))
	var complete []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, ".complete")); err == nil {
			complete = append(complete, d)
		}
	}
	if len(complete) == 0 {
		return "", fmt.Errorf("%w: no Apache Kafka jars: set STROM_KAFKA_LIBS or fetch them into %s (integration/kafka/fetch.sh)",
			ErrUnavailable, cache)
	}
	slices.SortFunc(complete, func(a, b string) int { return compareVersions(versionOf(a), versionOf(b)) })
	return filepath.Join(complete[len(complete)-1], "libs"), nil
}

func versionOf(dir string) string { return strings.TrimPrefix(filepath.Base(dir), "kafka-") }

// compareVersions orders dotted numeric versions ("4.10.0" > "4.9.1"); non-numeric parts compare as 0.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// compileJava compiles java/Scenario.java against libs into a cache folder keyed by the source and the
// libs path, so repeated runs skip javac. The class folder is built under a temporary name and renamed
// into place, so concurrent runs never see a half-written one.
func compileJava(ctx context.Context, cfg *config, libs string) (string, error) {
	src := filepath.Join(cfg.scriptsDir, "java", "Scenario.java")
	code, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("%w: read %s: %v", ErrUnavailable, src, err)
	}
	sum := sha256.Sum256(append(append(code, 0), libs...))
	dir := filepath.Join(os.TempDir(), "strom-matrix-java-"+hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(filepath.Join(dir, "Scenario.class")); err == nil {
		return dir, nil
	}
	if _, err := exec.LookPath(cfg.javac); err != nil {
		return "", fmt.Errorf("%w: javac not found: %v", ErrUnavailable, err)
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "strom-matrix-javac-")
	if err != nil {
		return "", fmt.Errorf("javac output folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	if _, err := runCmd(ctx, nil, nil, cfg.javac, "-cp", filepath.Join(libs, "*"), "-d", tmp, src); err != nil {
		return "", fmt.Errorf("compile Scenario.java: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil && !exists(filepath.Join(dir, "Scenario.class")) {
		return "", fmt.Errorf("install compiled classes: %w", err)
	}
	return dir, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// runJava runs java/Scenario.java (Apache Kafka's Java client) from the Kafka jars the harness uses.
func runJava(ctx context.Context, cfg *config, sc *scenario) ([]Result, error) {
	libs, err := kafkaLibs(cfg)
	if err != nil {
		return nil, err
	}
	classes, err := compileJava(ctx, cfg, libs)
	if err != nil {
		return nil, err
	}
	cp := classes + string(os.PathListSeparator) + filepath.Join(libs, "*")
	return runScript(ctx, sc, classes, nil, cfg.java, "-Xmx256m", "-cp", cp, "Scenario", cfg.bootstrap)
}
