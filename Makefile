# Strom's build, run and test entry points. `make run` and `make test` are all a
# fresh machine needs (see README.md); .ci/run provisions system packages first.

GO        ?= go
BIN       := bin/strom
DATA_DIR  ?= ./data
GOFLAGS_TEST ?=
# Packages with unit tests run under the race detector; integration/ runs real
# processes and is run without it to stay inside the CI budget.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v /integration)

.PHONY: build run test deps unit integration bench bench-compare bench-compare-replicated bench-mirror fmt vet clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/strom

run: build
	./$(BIN) serve --data-dir $(DATA_DIR)

test: deps vet unit integration

# What the tests need beyond Go modules: Apache Kafka's jars (Maven Central, cached), kafkajs, and as root
# the missing Debian packages and a Docker engine. Each step is a no-op when already done.
deps:
	./.ci/provision

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 $(GOFLAGS_TEST) $(UNIT_PKGS)

# The harness runs this build of bin/strom instead of building its own. The client matrix (client x
# feature x cluster) is printed and written to integration/MATRIX.md, which the README links.
# testreport prints what go test would, plus the output of tests a timeout cut short and the slowest
# tests, so every CI log shows where the time went.
integration: build
	$(GO) build -o bin/testreport ./internal/testreport
	STROM_BIN=$(abspath $(BIN)) STROM_MATRIX_OUT=$(CURDIR)/integration/MATRIX.md ./bin/testreport -count=1 -timeout 40m $(GOFLAGS_TEST) ./integration/...
	@echo; echo 'Client matrix (integration/MATRIX.md):'; cat integration/MATRIX.md

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./storage/...

# Side-by-side against Apache Kafka (not part of `make test`): writes bench/RESULTS.md and PNG plots.
# A full run (3 rounds) takes about 10 minutes on two cores; BENCH_COMPARE_FLAGS="-rounds 1 -duration 3s" for a quick one.
BENCH_COMPARE_FLAGS ?=
bench-compare: build
	STROM_BIN=$(abspath $(BIN)) $(GO) run ./bench/compare -out bench $(BENCH_COMPARE_FLAGS)

# The same with three-node clusters on both sides: replication factor 3, min.insync.replicas=2.
bench-compare-replicated: build
	STROM_BIN=$(abspath $(BIN)) $(GO) run ./bench/compare -out bench/replicated -nodes 3 $(BENCH_COMPARE_FLAGS)

# Copy throughput, strom migrate vs MirrorMaker 2 (each at-least-once and exactly-once, every copy checked
# with strom verify), between two single-node Kafkas (not part of `make test`): writes bench/MIRROR-RESULTS.md.
# About 5 minutes on two idle cores; BENCH_MIRROR_FLAGS="-records 200000 -rounds 2" (under 2 minutes) or
# "-records 100000 -rounds 1" for a quicker one.
BENCH_MIRROR_FLAGS ?=
bench-mirror: build
	$(GO) run ./bench/mirrorcompare -strom-bin $(abspath $(BIN)) -out bench/MIRROR-RESULTS.md $(BENCH_MIRROR_FLAGS)

fmt:
	gofmt -s -w .

clean:
	rm -rf bin
