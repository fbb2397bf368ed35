# Strom's build, run and test entry points. `make run` and `make test` are all a
# fresh machine needs (see README.md); .ci/run provisions system packages first.

GO        ?= go
BIN       := bin/strom
DATA_DIR  ?= ./data
GOFLAGS_TEST ?=
# Packages with unit tests run under the race detector; integration/ runs real
# processes and is run without it to stay inside the CI budget.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v /integration)

.PHONY: build run test unit integration bench fmt vet clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/strom

run: build
	./$(BIN) serve --data-dir $(DATA_DIR)

test: vet unit integration

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 $(GOFLAGS_TEST) $(UNIT_PKGS)

integration: build
	$(GO) test -count=1 -timeout 25m $(GOFLAGS_TEST) ./integration/...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./storage/...

fmt:
	gofmt -s -w .

clean:
	rm -rf bin
