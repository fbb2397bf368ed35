# Strom's build, run and test entry points. `make run` and `make test` are all a
# fresh machine needs (see README.md); .ci/run provisions system packages first.

GO        ?= go
BIN       := bin/strom
DATA_DIR  ?= ./data
GOFLAGS_TEST ?=
# Packages with unit tests run under the race detector; integration/ runs real
# processes and is run without it to stay inside the CI budget.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v /integration)

.PHONY: build run test deps unit integration bench fmt vet clean

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

# The harness runs this build of bin/strom instead of building its own.
integration: build
	STROM_BIN=$(abspath $(BIN)) $(GO) test -count=1 -timeout 25m $(GOFLAGS_TEST) ./integration/...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./storage/...

fmt:
	gofmt -s -w .

clean:
	rm -rf bin
