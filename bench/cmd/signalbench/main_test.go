package main

import (
	"encoding/json"
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/signal-notify/signal/internal/event"
)

func TestMessagesAreValidAndCarryTheSendTime(t *testing.T) {
	v := message(42, [2]string{"u1", "u2"}, 1789000000123456789)
	d, err := event.Decode(v)
	if err != nil {
		t.Fatalf("%s: %v", v, err)
	}
	if len(d.Recipients) != 2 || d.OrganizerID != organizer(42) {
		t.Errorf("decoded %+v", d)
	}
	var data struct {
		SentNs int64 `json:"sentNs"`
	}
	if err := json.Unmarshal(d.CanonicalData, &data); err != nil || data.SentNs != 1789000000123456789 {
		t.Errorf("canonical data %s lost sentNs: %v", d.CanonicalData, err)
	}
	if strings.Contains(string(message(1, [2]string{"a", "b"}, 0)), "sentNs") {
		t.Error("sentNs without a send time")
	}
}

func TestRecipientsAreTwoDistinctOfTheConnected(t *testing.T) {
	f := recipientsOf("r", 7)
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		r := f(i)
		if r[0] == r[1] {
			t.Fatalf("message %d: %v", i, r)
		}
		seen[r[0]], seen[r[1]] = true, true
	}
	if len(seen) != 7 {
		t.Errorf("recipients used: %d of 7", len(seen))
	}
}

func TestParseChecksFlags(t *testing.T) {
	cfg, err := parse("all", []string{"-rates", "1000, 2000", "-clients", "300", "-per-proc", "100"})
	if err != nil {
		t.Fatal(err)
	}
	e2e, _ := cfg.lookup("e2e").(*e2eRun)
	fan, _ := cfg.lookup("slow").(*fanoutRun)
	if e2e == nil || fan == nil || len(e2e.rates) != 2 || e2e.rates[1] != 2000 || fan.clients != 300 || cfg.perProc != 100 || !cfg.has("ingest") {
		t.Fatalf("%+v %+v %+v", cfg, e2e, fan)
	}
	if len(cfg.runs) != len(scenarios()) {
		t.Errorf("all selected %d of %d scenarios", len(cfg.runs), len(scenarios()))
	}
	if c, _ := parse("e2e", nil); c.has("ingest") || !c.has("e2e") || len(c.runs) != 1 {
		t.Error("a single scenario runs alone")
	}
	if c, _ := parse("slow", nil); c == nil || c.lookup("fanout") == nil || c.has("fanout") {
		t.Error("slow runs the fanout scenario's slow part alone")
	}
	for _, bad := range [][]string{{"-rates", "x"}, {"-per-proc", "7000"}, {"-slow-pct", "0"}, {"-scale-max", "5"}, {"-bigorg-sizes", "-1"}, {"extra"}} {
		if _, err := parse("all", bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	// A scenario takes the shared flags and its own, not another's.
	if _, err := parse("e2e", []string{"-n", "5"}); err == nil {
		t.Error("e2e accepted ingest's -n")
	}
	if _, err := parse("nope", nil); err == nil {
		t.Error("unknown scenario accepted")
	}
}

// Every scenario is one registration: its names are the make targets of
// bench.mk and appear in bench/README.md.
func TestEveryScenarioHasItsMakeTargetAndItsReadmeLine(t *testing.T) {
	mk, err := os.ReadFile("../../bench.mk")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^BENCH_SCENARIOS\s*:=(.*)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("bench.mk has no BENCH_SCENARIOS line")
	}
	listed := strings.Fields(string(m[1]))
	if got, want := strings.Join(listed, " "), strings.Join(names(), " "); got != want {
		t.Errorf("bench.mk's BENCH_SCENARIOS = %q, want the registry's names in order: %q", got, want)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names() {
		if !strings.Contains(string(readme), "bench-"+n+"`") {
			t.Errorf("bench/README.md does not mention make bench-%s", n)
		}
	}
	for _, s := range scenarios() {
		if s.summary == "" || s.setup == nil {
			t.Errorf("scenario %s: no summary or setup", s.name)
		}
		r := s.setup(flag.NewFlagSet(s.name, flag.ContinueOnError))
		if err := r.check(); err != nil {
			t.Errorf("scenario %s: its defaults do not pass its check: %v", s.name, err)
		}
		if len(r.results()) == 0 {
			t.Errorf("scenario %s: no result key", s.name)
		}
	}
}

func TestClosedText(t *testing.T) {
	if got := closedText(0, nil); got != "none" {
		t.Error(got)
	}
	if got := closedText(3, map[int]int{1008: 2, 1006: 1}); got != "3 (close code 1006: 1, close code 1008: 2)" {
		t.Error(got)
	}
}

func TestIntAfterReadsTheNumberAfterTheKey(t *testing.T) {
	frame := []byte(`{"topic":"observation/signal/notification/created","room":"r","data":{"id":"x","data":{"payment":{"id":"p-1"},"sentNs":1789000000123456789}}}`)
	if v, ok := intAfter(frame, `"sentNs":`); !ok || v != 1789000000123456789 {
		t.Errorf("sentNs %d %v", v, ok)
	}
	if v, ok := intAfter([]byte(`{"topic":"bench/broadcast","data":{"id":-3}}`), `"id":`); !ok || v != -3 {
		t.Errorf("id %d %v", v, ok)
	}
	if _, ok := intAfter([]byte(`{"id":"text"}`), `"id":`); ok {
		t.Error("a string is not a number")
	}
}
