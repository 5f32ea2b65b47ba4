# Signal's benchmark suite. The Makefile includes it (`include bench/bench.mk`);
# it also works on its own: make -f bench/bench.mk bench
#
#   make bench            every scenario, full size: bench/results/<date>.md and <date>-*.png
#   make bench-quick      every scenario, small sizes (a minute or two): bench/results/<date>-quick.md
#   make bench-ingest     one scenario (also bench-e2e, bench-fanout, bench-slow, bench-cluster, bench-scale, bench-failover, bench-big-org, bench-hostile, bench-inbox, bench-poison, bench-lifecycle, bench-soak)
#   make bench-test       the harness's own tests (and the short soak)
#   make soak             the production day at full size (bench-soak)
#
# BENCH_FLAGS adds signalbench flags, e.g. BENCH_FLAGS="-n 50000 -keep".
#
# The harness is a module of its own (bench/go.mod, the product through a
# replace), so its plotting dependencies stay out of the product's go.mod;
# it is built into bin/signalbench and run from the repository's root.
# BENCH_SCENARIOS is the registry's names in order (a test checks it): a new
# scenario adds its name here.
GO          ?= go
BENCH_OUT   ?= bench/results
BENCH_FLAGS ?=
BENCH_DATE  := $(shell date +%Y-%m-%d)
BENCH_RUN   := bin/signalbench
BENCH_SCENARIOS := ingest e2e fanout slow cluster scale failover big-org hostile inbox poison sync lifecycle soak

.PHONY: soak bench bench-quick bench-test bench-build bench-js bench-signalctl $(addprefix bench-,$(BENCH_SCENARIOS))

# The server under test: built from this work tree, run as a child process.
bench-signalctl:
	$(GO) build -o bin/signalctl ./cmd/signalctl

# The harness, from its own module.
bench-build:
	$(GO) -C bench build -o ../$(BENCH_RUN) ./cmd/signalbench

bench: bench-signalctl bench-build
	$(BENCH_RUN) all -out $(BENCH_OUT) $(BENCH_FLAGS)

bench-quick: bench-signalctl bench-build
	$(BENCH_RUN) all -out $(BENCH_OUT) -date $(BENCH_DATE)-quick -n 20000 -seed-n 1000 -rates 1000,2000 \
		-duration 5s -clients 3000 -per-proc 1000 -broadcasts 5 -cluster-clients 100 \
		-cluster-rates 1000,2000 -scale-n 20000 -bigorg-events 5 -bigorg-latency-events 3 \
		-hostile 50 -hostile-others 1000 -queue-bytes 262144 \
		-inbox-rows 300000 -inbox-requests 200 -inbox-backlog 60000 $(BENCH_FLAGS)

$(addprefix bench-,$(BENCH_SCENARIOS)): bench-signalctl bench-build
	$(BENCH_RUN) $(@:bench-%=%) -out $(BENCH_OUT) $(BENCH_FLAGS)

# The JavaScript client: bundle sizes and CPU per 1,000 notifications in Node
# (clients/js/scripts/bench.mjs; not part of `bench all`).
bench-js:
	scripts/ensure-js.sh
	node clients/js/scripts/bench.mjs

bench-test:
	$(GO) -C bench test -count=1 ./...

# soak: the production day at full size (the soak scenario); make test runs
# a short one (bench/cmd/signalbench/soak_test.go).
soak: bench-soak
