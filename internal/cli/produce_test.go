package cli_test

import (
	"context"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/testkit"
)

// onePerLine is produce's text output for a few messages.
var onePerLine = regexp.MustCompile(`^` + regexp.QuoteMeta(testkit.Topic) + ` partition \d+ offset \d+$`)

func TestProduceBuildsAValidMessageFromFlags(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		stdin  string
		files  map[string]string // name → content; "{name}" in args becomes the path
		key    string
		scope  string
		rcpts  []string
		org    string
		merch  string
		typ    string
		data   string // canonical JSON
		occurs string // "" = about now
	}{
		{
			name: "defaults with recipients", args: []string{"--recipients", "u1,u2", "--recipients", "u3"},
			key: "org-1", scope: "users", rcpts: []string{"u1", "u2", "u3"}, org: "org-1",
			typ: "PAYMENT_SUCCESS", data: `{"payment":{"subject":"Test payment"}}`,
		},
		{
			name: "org scope, custom data and type", args: []string{"--scope", "org", "--organizer", "org-9", "--type", "TICKET_SOLD",
				"--data", `{"b": 2, "a": {"x": [1, "y"]}}`, "--actor", "a-7", "--actor-name", "Ann", "--actor-type", "admin"},
			key: "org-9", scope: "org", org: "org-9", typ: "TICKET_SOLD", data: `{"a":{"x":[1,"y"]},"b":2}`,
		},
		{
			name: "merchant scope", args: []string{"--scope", "merchant", "--organizer", "org-2", "--merchant", "m-7"},
			key: "org-2", scope: "merchant", org: "org-2", merch: "m-7",
			typ: "PAYMENT_SUCCESS", data: `{"payment":{"subject":"Test payment"}}`,
		},
		{
			name: "recipients ignored outside scope users", args: []string{"--scope", "org", "--recipients", "u1"},
			key: "org-1", scope: "org", org: "org-1", typ: "PAYMENT_SUCCESS", data: `{"payment":{"subject":"Test payment"}}`,
		},
		{
			name: "explicit key and occurredAt", args: []string{"--recipients", "u1", "--key", "k-1", "--occurred-at", "2026-11-27T09:00:00Z"},
			key: "k-1", scope: "users", rcpts: []string{"u1"}, org: "org-1", typ: "PAYMENT_SUCCESS",
			data: `{"payment":{"subject":"Test payment"}}`, occurs: "2026-11-27T09:00:00Z",
		},
		{
			name: "data from a file", args: []string{"--recipients", "u1", "--data", "@{data.json}"},
			files: map[string]string{"data.json": "\n  {\"payment\": {\"id\": \"p-9\"}}\n\n"},
			key:   "org-1", scope: "users", rcpts: []string{"u1"}, org: "org-1", typ: "PAYMENT_SUCCESS", data: `{"payment":{"id":"p-9"}}`,
		},
		{
			name: "data from stdin", args: []string{"--recipients", "u1", "--data", "-"}, stdin: `{"from":"stdin"}` + "\n",
			key: "org-1", scope: "users", rcpts: []string{"u1"}, org: "org-1", typ: "PAYMENT_SUCCESS", data: `{"from":"stdin"}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			broker := testkit.Broker(t)
			args := append([]string{"produce", "--brokers", broker}, tc.args...)
			for name, content := range tc.files {
				p := writeFile(t, name, content)
				for i := range args {
					args[i] = strings.ReplaceAll(args[i], "{"+name+"}", p)
				}
			}
			before := time.Now().Add(-time.Second)
			r := runWith(t, runOpts{stdin: tc.stdin}, args...)
			r.wantCode(t, 0)
			if lines := strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n"); len(lines) != 1 || !onePerLine.MatchString(lines[0]) {
				t.Errorf("stdout = %q, want one line: <topic> partition N offset N", r.Stdout)
			}
			if r.Stderr != "" {
				t.Errorf("stderr = %q, want nothing", r.Stderr)
			}

			rec := consume(t, broker, testkit.Topic, 1)[0]
			if string(rec.Key) != tc.key {
				t.Errorf("key = %q, want %q", rec.Key, tc.key)
			}
			d, err := event.Decode(rec.Value)
			if err != nil {
				t.Fatalf("the produced message is invalid: %v\n%s", err, rec.Value)
			}
			if d.RecipientScope != tc.scope || d.OrganizerID != tc.org || d.MerchantID != tc.merch || d.EventType != tc.typ {
				t.Errorf("scope/organizer/merchant/type = %q/%q/%q/%q, want %q/%q/%q/%q",
					d.RecipientScope, d.OrganizerID, d.MerchantID, d.EventType, tc.scope, tc.org, tc.merch, tc.typ)
			}
			if strings.Join(d.RecipientIDs, ",") != strings.Join(tc.rcpts, ",") {
				t.Errorf("recipientIds = %v, want %v", d.RecipientIDs, tc.rcpts)
			}
			if string(d.CanonicalData) != tc.data {
				t.Errorf("data = %s, want %s", d.CanonicalData, tc.data)
			}
			if tc.occurs != "" {
				if d.OccurredAt != tc.occurs {
					t.Errorf("occurredAt = %q, want %q", d.OccurredAt, tc.occurs)
				}
			} else if d.Occurred.Before(before) || d.Occurred.After(time.Now().Add(time.Second)) {
				t.Errorf("occurredAt = %s, want about now", d.OccurredAt)
			}
			if d.ActorID != d.Actor.ID || d.Actor.Name == "" || d.Actor.Type == "" {
				t.Errorf("actor = %q %+v", d.ActorID, d.Actor)
			}
		})
	}
}

func TestProduceRefusesInvalidFlagsWithTheReasonAndSendsNothing(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"merchant scope without merchant", []string{"--scope", "merchant"}, "merchantId is required when recipientScope is merchant"},
		{"users scope without recipients", []string{"--scope", "users"}, "recipientIds must be a non-empty list"},
		{"unknown scope", []string{"--scope", "everyone"}, `recipientScope must be one of org, merchant, users; got "everyone"`},
		{"data a list", []string{"--recipients", "u1", "--data", "[1]"}, "data must be a JSON object"},
		{"data not JSON", []string{"--recipients", "u1", "--data", "nope"}, "--data is not valid JSON: nope"},
		{"data null", []string{"--recipients", "u1", "--data", "null"}, "data is required"},
		{"empty organizer", []string{"--recipients", "u1", "--organizer", ""}, "organizerId is required"},
		{"empty type", []string{"--recipients", "u1", "--type", ""}, "eventType is required"},
		{"bad occurredAt", []string{"--recipients", "u1", "--occurred-at", "yesterday"}, `occurredAt must be an RFC 3339 time, got "yesterday"`},
		{"empty recipient", []string{"--recipients", "u1,,u2"}, "recipientIds[1] is required"},
		{"bad expiresAt", []string{"--recipients", "u1", "--expires-at", "soon"}, `expiresAt must be an RFC 3339 time, got "soon"`},
		{"bad groupKey", []string{"--recipients", "u1", "--group-key", "a\tb"}, "groupKey must not contain control characters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			broker := testkit.Broker(t)
			r := run(t, append([]string{"produce", "--brokers", broker}, tc.args...)...)
			r.wantCode(t, 2)
			r.wantStderr(t, tc.want, "Run 'signalctl produce --help' for usage.")
			if r.Stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.Stdout)
			}
			if n := topicRecords(t, broker, testkit.Topic); n != 0 {
				t.Errorf("%d records produced, want none", n)
			}
		})
	}
}

// msg is a valid message with organizer org and n in its data.
func msg(org string, n int, pretty bool) string {
	m := map[string]any{
		"eventType": "PAYMENT_SUCCESS", "recipientScope": "users", "recipientIds": []string{"u1"},
		"actorId": "a1", "actor": map[string]any{"id": "a1", "name": "Alice", "type": "user"},
		"organizerId": org, "data": map[string]any{"n": n}, "occurredAt": "2026-11-27T09:00:00Z",
	}
	var b []byte
	if pretty {
		b, _ = json.MarshalIndent(m, "", "  ")
	} else {
		b, _ = json.Marshal(m)
	}
	return string(b)
}

func TestProduceFromFile(t *testing.T) {
	cases := []struct {
		name    string
		content string
		stdin   bool
		orgs    []string // the records' keys, in order
	}{
		{"one object", msg("org-1", 1, true), false, []string{"org-1"}},
		{"NDJSON", msg("org-1", 1, false) + "\n" + msg("org-2", 2, false) + "\n" + msg("org-3", 3, false) + "\n", false, []string{"org-1", "org-2", "org-3"}},
		{"concatenated pretty objects", msg("org-4", 1, true) + msg("org-5", 2, true), false, []string{"org-4", "org-5"}},
		{"stdin", msg("org-6", 1, false) + "\n" + msg("org-7", 2, true), true, []string{"org-6", "org-7"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			broker := testkit.Broker(t)
			o := runOpts{}
			file := "-"
			if tc.stdin {
				o.stdin = tc.content
			} else {
				file = writeFile(t, "messages.json", tc.content)
			}
			r := runWith(t, o, "produce", "--brokers", broker, "--file", file)
			r.wantCode(t, 0)
			lines := strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n")
			if len(lines) != len(tc.orgs) {
				t.Errorf("stdout has %d lines, want %d: %q", len(lines), len(tc.orgs), r.Stdout)
			}
			for _, l := range lines {
				if !onePerLine.MatchString(l) {
					t.Errorf("stdout line %q, want <topic> partition N offset N", l)
				}
			}
			recs := consume(t, broker, testkit.Topic, len(tc.orgs))
			got := map[string]int{}
			for _, rec := range recs {
				d, err := event.Decode(rec.Value)
				if err != nil {
					t.Fatalf("record %s: %v", rec.Value, err)
				}
				if string(rec.Key) != d.OrganizerID {
					t.Errorf("key %q, want the organizerId %q", rec.Key, d.OrganizerID)
				}
				got[d.OrganizerID]++
			}
			for _, org := range tc.orgs {
				if got[org] != 1 {
					t.Errorf("messages of %s: %d, want 1 (got %v)", org, got[org], got)
				}
			}
		})
	}
}

func TestProduceRefusesABadFileWithTheMessageNumber(t *testing.T) {
	noActor := strings.Replace(msg("org-1", 2, false), `"actor":{"id":"a1","name":"Alice","type":"user"},`, "", 1)
	cases := []struct {
		name    string
		content string
		want    string
	}{
		{"second message invalid", msg("org-1", 1, false) + "\n" + noActor + "\n" + msg("org-1", 3, false), "message 2 would be refused: missing_field: actor is required"},
		{"third message not JSON", msg("org-1", 1, false) + "\n" + msg("org-1", 2, false) + "\n{nope", "message 3 is not JSON"},
		{"a list, not an object", `[` + msg("org-1", 1, false) + `]`, "message 1 would be refused: malformed_json: message must be a JSON object"},
		{"empty", "\n \n", "holds no message"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			broker := testkit.Broker(t)
			file := writeFile(t, "bad.ndjson", tc.content)
			r := run(t, "produce", "--brokers", broker, "--file", file)
			r.wantCode(t, 1)
			r.wantStderr(t, file, tc.want)
			if r.Stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.Stdout)
			}
			if n := topicRecords(t, broker, testkit.Topic); n != 0 {
				t.Errorf("%d records produced, want none", n)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		isolate(t)
		r := run(t, "produce", "--brokers", "127.0.0.1:1", "--file", "/nonexistent/messages.json")
		r.wantCode(t, 1)
		r.wantStderr(t, "/nonexistent/messages.json", "no such file")
	})
}

func TestProduceNoValidateSendsInvalidMessagesAsTheyAre(t *testing.T) {
	isolate(t)
	broker := testkit.Broker(t)
	invalid := `{"eventType":"PAYMENT_SUCCESS","recipientScope":"nobody","organizerId":"org-3","data":[1]}`
	file := writeFile(t, "invalid.json", invalid+"\n")

	r := run(t, "produce", "--brokers", broker, "--file", file)
	r.wantCode(t, 1)
	r.wantStderr(t, "message 1 would be refused")

	r = run(t, "produce", "--brokers", broker, "--file", file, "--no-validate")
	r.wantCode(t, 0)
	rec := consume(t, broker, testkit.Topic, 1)[0]
	if string(rec.Value) != invalid {
		t.Errorf("value = %s, want the file's message unchanged: %s", rec.Value, invalid)
	}
	if string(rec.Key) != "org-3" {
		t.Errorf("key = %q, want the organizerId org-3 (the help promises it for every message)", rec.Key)
	}

	// Flags too: a merchant message without merchant goes out with --no-validate.
	broker2 := testkit.Broker(t)
	r = run(t, "produce", "--brokers", broker2, "--scope", "merchant", "--organizer", "org-4", "--no-validate")
	r.wantCode(t, 0)
	rec = consume(t, broker2, testkit.Topic, 1)[0]
	if _, err := event.Decode(rec.Value); err == nil || !strings.Contains(err.Error(), "merchantId is required") {
		t.Errorf("decode of the sent message: %v, want merchantId is required", err)
	}
	if string(rec.Key) != "org-4" {
		t.Errorf("key = %q, want org-4", rec.Key)
	}
}

func TestProduceCountRepeatsWithDistinctOccurredAt(t *testing.T) {
	isolate(t)
	broker := testkit.Broker(t)
	r := run(t, "produce", "--brokers", broker, "--recipients", "u1", "--count", "20")
	r.wantCode(t, 0)
	summary := regexp.MustCompile(`^produced 20 messages to ` + regexp.QuoteMeta(testkit.Topic) + ` in \S+ \(\d+/s\)\n$`)
	if !summary.MatchString(r.Stdout) {
		t.Errorf("stdout = %q, want one summary line", r.Stdout)
	}
	seen := map[string]bool{}
	for _, rec := range consume(t, broker, testkit.Topic, 20) {
		d, err := event.Decode(rec.Value)
		if err != nil {
			t.Fatalf("record %s: %v", rec.Value, err)
		}
		if seen[d.OccurredAt] {
			t.Errorf("occurredAt %s repeated", d.OccurredAt)
		}
		seen[d.OccurredAt] = true
		if string(rec.Key) != "org-1" || strings.Join(d.Recipients, ",") != "u1" {
			t.Errorf("record key %q recipients %v", rec.Key, d.Recipients)
		}
	}
	if len(seen) != 20 {
		t.Errorf("%d distinct occurredAt values, want 20", len(seen))
	}
}

func TestProduceCountWithFixedOccurredAtRepeatsIt(t *testing.T) {
	isolate(t)
	broker := testkit.Broker(t)
	r := run(t, "produce", "--brokers", broker, "--recipients", "u1", "--count", "3", "--occurred-at", "2026-01-02T03:04:05Z")
	r.wantCode(t, 0)
	for _, rec := range consume(t, broker, testkit.Topic, 3) {
		d, err := event.Decode(rec.Value)
		if err != nil || d.OccurredAt != "2026-01-02T03:04:05Z" {
			t.Errorf("record %s: %v", rec.Value, err)
		}
	}
}

func TestProduceJSONOutput(t *testing.T) {
	t.Run("few messages: one entry each", func(t *testing.T) {
		isolate(t)
		broker := testkit.Broker(t)
		r := run(t, "produce", "--brokers", broker, "--recipients", "u1", "--count", "3", "-o", "json")
		r.wantCode(t, 0)
		got := decodeJSON[[]map[string]json.Number](t, r.Stdout)
		if len(got) != 3 {
			t.Fatalf("%d entries, want 3: %s", len(got), r.Stdout)
		}
		seen := map[string]bool{}
		for _, e := range got {
			if len(e) != 2 || e["partition"] == "" || e["offset"] == "" {
				t.Errorf("entry %v, want exactly partition and offset", e)
			}
			p, _ := e["partition"].Int64()
			if p < 0 || p >= 4 {
				t.Errorf("partition %d out of range", p)
			}
			key := string(e["partition"]) + "/" + string(e["offset"])
			if seen[key] {
				t.Errorf("partition/offset %s listed twice", key)
			}
			seen[key] = true
		}
	})
	t.Run("many messages: a summary object", func(t *testing.T) {
		isolate(t)
		broker := testkit.Broker(t)
		r := run(t, "produce", "--brokers", broker, "--recipients", "u1", "--count", "20", "-o", "json")
		r.wantCode(t, 0)
		type summary struct {
			Topic        string         `json:"topic"`
			Produced     int            `json:"produced"`
			Seconds      float64        `json:"seconds"`
			PerSecond    float64        `json:"perSecond"`
			PerPartition map[string]int `json:"perPartition"`
		}
		got := decodeJSON[summary](t, r.Stdout)
		keys := decodeJSON[map[string]any](t, r.Stdout)
		if len(keys) != 5 {
			t.Errorf("keys %v, want topic, produced, seconds, perSecond, perPartition", keys)
		}
		if got.Topic != testkit.Topic || got.Produced != 20 || got.Seconds <= 0 || got.PerSecond <= 0 {
			t.Errorf("summary %+v", got)
		}
		sum := 0
		for _, n := range got.PerPartition {
			sum += n
		}
		if sum != 20 {
			t.Errorf("perPartition %v sums to %d, want 20", got.PerPartition, sum)
		}
	})
}

func TestProduceRatePacesMessages(t *testing.T) {
	isolate(t)
	broker := testkit.Broker(t)
	start := time.Now()
	r := run(t, "produce", "--brokers", broker, "--recipients", "u1", "--count", "5", "--rate", "40")
	r.wantCode(t, 0)
	// 5 messages at 40/s: the last leaves 4/40 s = 100 ms after the first.
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("took %s, want at least 100ms at 40/s", d)
	}
	consume(t, broker, testkit.Topic, 5)
}

func TestProduceToAnUnreachableBrokerFailsQuickly(t *testing.T) {
	isolate(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now

	// The context is a safety net only: produce must give up on its own.
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	start := time.Now()
	r := runWith(t, runOpts{ctx: ctx}, "produce", "--brokers", addr, "--recipients", "u1")
	took := time.Since(start)
	r.wantCode(t, 1)
	r.wantStderr(t, addr, "is the broker running?")
	if strings.Contains(r.Stderr, "context deadline exceeded") || took > 15*time.Second {
		t.Errorf("produce took %s and said %q: it should fail on its own, quickly", took, r.Stderr)
	}
	if lines := strings.Count(r.Stderr, "\n"); lines != 1 {
		t.Errorf("stderr has %d lines, want one message", lines)
	}
	if r.Stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.Stdout)
	}
}

// Issue 15, item 1: the tour's dead-letter step. Input that is not JSON
// goes out line by line, byte for byte, so serve makes it a dead letter.
func TestProduceNoValidateSendsNonJSONInputLineByLine(t *testing.T) {
	isolate(t)
	broker := testkit.Broker(t)
	r := runWith(t, runOpts{stdin: "not json\n"}, "produce", "--brokers", broker, "--file", "-")
	r.wantCode(t, 1)
	r.wantStderr(t, "message 1 is not JSON", "--no-validate")

	r = runWith(t, runOpts{stdin: "not json\n\n{\"half\": \r\n\xff\xfe raw\n"}, "produce", "--brokers", broker, "--file", "-", "--no-validate")
	r.wantCode(t, 0)
	recs := consume(t, broker, testkit.Topic, 3)
	want := []string{"not json", `{"half": `, "\xff\xfe raw"}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, rec := range recs {
		if string(rec.Value) != want[i] || rec.Key != nil {
			t.Errorf("record %d: key %q value %q, want no key and %q", i, rec.Key, rec.Value, want[i])
		}
	}
}

func TestProduceCompressesBatchesAndAddsHeaders(t *testing.T) {
	for code, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run("with "+codec, func(t *testing.T) {
			isolate(t)
			broker := testkit.Broker(t)
			r := run(t, "produce", "--brokers", broker, "--recipients", "u1", "--count", "3",
				"--compression", codec, "--header", "trace-id=abc=123", "--header", "empty=", "--header", "trace-id=again")
			r.wantCode(t, 0)
			for _, rec := range consume(t, broker, testkit.Topic, 3) {
				if got := rec.Attrs.CompressionType(); got != uint8(code) {
					t.Errorf("compression type %d, want %d (%s)", got, code, codec)
				}
				var hs []string
				for _, h := range rec.Headers {
					hs = append(hs, h.Key+"="+string(h.Value))
				}
				if got := strings.Join(hs, " "); got != "trace-id=abc=123 empty= trace-id=again" {
					t.Errorf("headers %q", got)
				}
				if _, err := event.Decode(rec.Value); err != nil {
					t.Errorf("value %s: %v", rec.Value, err)
				}
			}
		})
	}
	t.Run("refusing an unknown codec or a header without =", func(t *testing.T) {
		isolate(t)
		for _, args := range [][]string{{"--compression", "brotli"}, {"--header", "novalue"}, {"--header", "=v"}} {
			r := run(t, append([]string{"produce", "--brokers", "127.0.0.1:1", "--recipients", "u1"}, args...)...)
			r.wantCode(t, 2)
			r.wantStderr(t, strings.TrimPrefix(args[0], "--"))
		}
	})
	t.Run("completing the codecs", func(t *testing.T) {
		isolate(t)
		r := run(t, "__complete", "produce", "--compression", "")
		r.wantCode(t, 0)
		if !strings.HasPrefix(r.Stdout, "none\ngzip\nsnappy\nlz4\nzstd\n:") {
			t.Errorf("completion %q", r.Stdout)
		}
	})
}

func TestProduceLifecycleFlagsSetTheMessagesOptionalFields(t *testing.T) {
	isolate(t)
	broker := testkit.Broker(t)
	r := run(t, "produce", "--brokers", broker, "--recipients", "u1", "--event-id", "pay-42",
		"--expires-at", "2030-01-01T00:00:00Z", "--group-key", "payments")
	r.wantCode(t, 0)
	d, err := event.Decode(consume(t, broker, testkit.Topic, 1)[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if d.EventID != "pay-42" || d.ExpiresAt != "2030-01-01T00:00:00Z" || d.Grouping != "payments" {
		t.Errorf("eventId/expiresAt/groupKey = %q/%q/%q", d.EventID, d.ExpiresAt, d.Grouping)
	}
}
