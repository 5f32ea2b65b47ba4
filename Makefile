# Signal — build, run and test. `make run` and `make test` are all a fresh
# machine needs (Go and the PostgreSQL server binaries).
GO      ?= go
BIN     := bin/signalctl
PKG     := github.com/signal-notify/signal/internal/cli
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X $(PKG).version=$(VERSION) -X $(PKG).commit=$(COMMIT) -X $(PKG).date=$(DATE)
DB_URL  ?= $(or $(SIGNAL_DATABASE_URL),postgres://postgres@127.0.0.1:5432/signal?sslmode=disable)
include release.mk
include bench/bench.mk

.PHONY: build run db db-stop test test-short check chromium interop fuzz clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/signalctl

## run: a local PostgreSQL (the one at $(DB_URL) if it answers, else one in .dev/postgres that only this account may use), then serve --dev
run: build
	@url=$$($(BIN) dev-db up --dir .dev/postgres --url "$(DB_URL)") && SIGNAL_DATABASE_URL="$$url" exec $(BIN) serve --dev

db: build
	@$(BIN) dev-db up --dir .dev/postgres --url "$(DB_URL)" >/dev/null

db-stop: build
	$(BIN) dev-db down --dir .dev/postgres

## test: formatting, vet, release files, and every test (race detector on) against a throwaway PostgreSQL
test: build check release-check chromium interop
	SIGNAL_INTEROP=required $(BIN) dev-db exec -- $(GO) test -race -count=1 -timeout 20m ./...

# The console's end-to-end test drives Debian's Chromium; install it when missing.
chromium:
	@scripts/ensure-chromium.sh

# The interoperability tests produce with Debian's kcat and with kafkajs, and
# drive Node's ws (npm, into git-ignored folders); install them when missing.
interop:
	@scripts/ensure-interop.sh

## test-short: the quick subset (no crash or outage tests)
test-short: build
	$(BIN) dev-db exec -- $(GO) test -short -count=1 ./...

## check: gofmt, go vet and staticcheck (its default checks: no config to keep)
check: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

## fuzz: run every fuzzer of the repository for FUZZTIME each (default 30s; CI: 3s), with a throwaway PostgreSQL (the consumer's property test needs one: each fuzzing worker would otherwise start its own)
FUZZTIME ?= 30s
fuzz: build
	GO=$(GO) FUZZTIME=$(FUZZTIME) $(BIN) dev-db exec -- scripts/fuzz.sh

clean:
	rm -rf bin dist
