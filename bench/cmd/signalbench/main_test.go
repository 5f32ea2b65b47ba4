package main

import (
	"encoding/json"
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
	cfg, err := parse("all", []string{"-rates", "1000, 2000", "-clients", "300"})
	if err != nil || len(cfg.rates) != 2 || cfg.rates[1] != 2000 || cfg.clients != 300 || !cfg.has("ingest") {
		t.Fatalf("%+v %v", cfg, err)
	}
	if c, _ := parse("e2e", nil); c.has("ingest") || !c.has("e2e") {
		t.Error("a single scenario runs alone")
	}
	for _, bad := range [][]string{{"-rates", "x"}, {"-per-proc", "7000"}, {"-slow-pct", "0"}, {"extra"}} {
		if _, err := parse("all", bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if _, err := parse("nope", nil); err == nil {
		t.Error("unknown scenario accepted")
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
