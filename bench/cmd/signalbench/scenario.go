package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
)

// A scenario is one part of the suite. Its file holds everything of it: its
// flags, its run and its section of the report, and registers it from an
// init function. Adding a scenario touches that one file (and bench.mk's
// list of make targets); see bench/README.md, "Adding a scenario".
type scenario struct {
	// name is the command-line name (`signalbench NAME`, `make bench-NAME`).
	name string
	// also are more names that select it: fanout also answers to slow, the
	// phase it runs on the same server and clients.
	also []string
	// order places it in `all` and in the report (ingest is 10, inbox 100).
	order int
	// summary is its line in the usage.
	summary string
	// setup registers its flags on fs and returns the run bound to them.
	setup func(fs *flag.FlagSet) run
}

// run is one scenario's part of an invocation: its flags' values, then
// what it measured.
type run interface {
	// check validates its flags once they are parsed.
	check() error
	// measure runs it. e is its own: the broker, databases, servers and
	// clients it starts are stopped when it returns. Partial results kept
	// before an error are reported.
	measure(ctx context.Context, e *env) error
	// results is what it measured, by key of the JSON file; nil values
	// did not run.
	results() map[string]any
	// report adds its sections and targets (nothing when it did not run).
	report(r *reporter)
}

var registry = map[string]*scenario{}

// register adds a scenario; called from the scenario's file's init.
func register(s *scenario) {
	for _, n := range append([]string{s.name}, s.also...) {
		if n == "all" || n == "client" || registry[n] != nil {
			panic(fmt.Sprintf("signalbench: scenario name %q registered twice or reserved", n))
		}
		registry[n] = s
	}
}

// scenarios lists every registered scenario once, in order.
func scenarios() []*scenario {
	seen := map[*scenario]bool{}
	var out []*scenario
	for _, s := range registry {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].order != out[j].order {
			return out[i].order < out[j].order
		}
		return out[i].name < out[j].name
	})
	return out
}

// names are every name a scenario answers to, in order.
func names() []string {
	var out []string
	for _, s := range scenarios() {
		out = append(out, s.name)
		out = append(out, s.also...)
	}
	return out
}

func scenarioHelp() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %-9s every scenario below, in order, one report\n", "all")
	for _, s := range scenarios() {
		fmt.Fprintf(&b, "  %-9s %s\n", s.name, s.summary)
		for _, a := range s.also {
			fmt.Fprintf(&b, "  %-9s that part of %s alone\n", a, s.name)
		}
	}
	return b.String()
}
