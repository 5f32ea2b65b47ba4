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
include tools.mk
include release.mk
include deploy.mk
include bench/bench.mk

.PHONY: build run db db-stop test test-short check specs chromium interop js types console-bundle test-token-soak fuzz clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/signalctl

## run: a local PostgreSQL (the one at $(DB_URL) if it answers, else one in .dev/postgres that only this account may use), then serve --dev
# Ctrl-C reaches serve, which drains and exits 130 as every command does:
# that is this target's normal end, not a failure for make to report.
run: build
	@url=$$($(BIN) dev-db up --dir .dev/postgres --url "$(DB_URL)") || exit 1; \
	  trap : INT; SIGNAL_DATABASE_URL="$$url" $(BIN) serve --dev; code=$$?; \
	  if [ $$code -eq 130 ]; then exit 0; fi; exit $$code

db: build
	@$(BIN) dev-db up --dir .dev/postgres --url "$(DB_URL)" >/dev/null

db-stop: build
	$(BIN) dev-db down --dir .dev/postgres

## test: formatting, vet, the API specs, release files, deployment files, the JavaScript client, and every test (race detector on) against a throwaway PostgreSQL
test: build check specs release-check deploy-check chromium interop js
	SIGNAL_INTEROP=required $(BIN) dev-db exec -- $(GO) test -race -count=1 -timeout 20m ./...
	$(GO) -C bench test -race -count=1 ./...

## specs: api/openapi.yaml and api/asyncapi.yaml: strict YAML 1.2, the OpenAPI 3.1 / AsyncAPI 3.0 validators, Redocly's recommended rules (npm ci into api/check/node_modules when missing)
specs:
	@scripts/check-specs.sh

# The console's end-to-end test drives Debian's Chromium; install it when missing.
chromium:
	@scripts/ensure-chromium.sh

# The interoperability tests produce with Debian's kcat and with kafkajs, and
# drive Node's ws (npm, into git-ignored folders); install them when missing.
interop:
	@scripts/ensure-interop.sh

# The JavaScript client (clients/js): npm ci from its lockfile when it
# changed, then its dist/ (internal/e2e/jsclient_test.go runs it in Node and
# Chromium).
js: interop
	@scripts/ensure-js.sh

## types: regenerate the client's TypeScript types from api/*.yaml
types:
	$(GO) test ./internal/tsgen -run TestGeneratedTypesAreCurrent -update

## console-bundle: rebuild the console's copy of the client (internal/console/static/signal-client.js)
console-bundle: js
	node clients/js/scripts/bundle.mjs console

## test-token-soak: the client keeps one connection on 30 s tokens for 5 minutes
test-token-soak: build chromium js
	SIGNAL_JS_TOKEN_TTL=30s SIGNAL_JS_TOKEN_FOR=5m SIGNAL_INTEROP=required $(BIN) dev-db exec -- \
	  $(GO) test -count=1 -timeout 10m -run TestJSClientKeepsOneConnectionOnShortTokens ./internal/e2e

## test-short: the quick subset (no crash or outage tests)
test-short: build
	$(BIN) dev-db exec -- $(GO) test -short -count=1 ./...

## check: gofmt, go.mod tidy, go vet, staticcheck, errcheck, govulncheck (both modules where it applies) and function size (internal/)
check: $(STATICCHECK) tidy-check errcheck vulncheck funcsize
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) -C bench vet ./...
	$(STATICCHECK) ./...
	cd bench && $(STATICCHECK) ./...

## fuzz: run every fuzzer of the repository for FUZZTIME each (default 30s; CI: 3s), with a throwaway PostgreSQL (the consumer's property test needs one: each fuzzing worker would otherwise start its own)
FUZZTIME ?= 30s
fuzz: build
	GO=$(GO) FUZZTIME=$(FUZZTIME) $(BIN) dev-db exec -- scripts/fuzz.sh

clean:
	rm -rf bin dist
