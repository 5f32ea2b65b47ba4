package daemon_test

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/signal-notify/signal/internal/daemon"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/testkit"
)

// otlpReceiver is an OTLP/HTTP trace endpoint keeping every span posted.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	bad   []string
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	req := &collectortrace.ExportTraceServiceRequest{}
	if err == nil {
		err = proto.Unmarshal(b, req)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if r.URL.Path != "/v1/traces" || err != nil {
		o.bad = append(o.bad, r.URL.Path)
		http.Error(w, "bad export", 400)
		return
	}
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(nil)
}

func (o *otlpReceiver) byTrace() map[string][]*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string][]*tracepb.Span{}
	for _, s := range o.spans {
		id := hex.EncodeToString(s.TraceId)
		out[id] = append(out[id], s)
	}
	return out
}

// traceparent is a producer's sampled span: its header and its ids.
func traceparent(trace, span string) []kgo.RecordHeader {
	return []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-" + trace + "-" + span + "-01")}}
}

// One traced notification's spans form a tree under the producer's span:
// consume, persist under it, push under that (committed); a traced REST
// send gets its server span; an untraced record and an unsampled one get
// none; the dead letter of a traced record is logged with its trace id.
func TestATracedRecordContinuesIntoConsumePersistAndPush(t *testing.T) {
	recv := &otlpReceiver{}
	otlp := httptest.NewServer(recv)
	defer otlp.Close()

	db := pgtest.NewDatabase(t)
	broker := testkit.Broker(t)
	cfg := testkit.Config(t, broker, db)
	cfg.Kafka.ResetOffset = "earliest"
	cfg.OTel.Endpoint = otlp.URL
	var logs logBuffer
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ready := make(chan daemon.Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{Config: cfg, Logger: slog.New(slog.NewJSONHandler(&logs, nil)), OnReady: func(i daemon.Info) { ready <- i }})
	}()
	var info daemon.Info
	select {
	case info = <-ready:
	case err := <-done:
		t.Fatalf("serve did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start within 30s")
	}
	testkit.Eventually(t, 30*time.Second, "readiness", func() bool { return get("http://"+info.HTTPAddr+"/readyz") == 200 })
	ws := testkit.Dial(t, "ws://"+info.HTTPAddr+"/socket/websocket", testkit.Token(t, "r1"))
	ws.Welcome()

	const (
		traced, producerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
		dead, deadSpan       = "5bf92f3577b34da6a3ce929d0e0e4737", "10f067aa0ba902b7"
		unsampled            = "6bf92f3577b34da6a3ce929d0e0e4738"
		rest, restSpan       = "7bf92f3577b34da6a3ce929d0e0e4739", "20f067aa0ba902b7"
	)
	producer := testkit.Producer(t, broker)
	unsampledHeader := []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-" + unsampled + "-30f067aa0ba902b7-00")}}
	recs := []*kgo.Record{
		{Topic: testkit.Topic, Key: []byte("org-1"), Value: testkit.Message("users", []string{"r1"}, nil), Headers: traceparent(traced, producerSpan)},
		{Topic: testkit.Topic, Key: []byte("org-1"), Value: testkit.Message("users", []string{"r1"}, nil)},
		{Topic: testkit.Topic, Key: []byte("org-1"), Value: testkit.Message("users", []string{"r1"}, nil), Headers: unsampledHeader},
		{Topic: testkit.Topic, Key: []byte("org-1"), Value: []byte(`{"not":"a notification"}`), Headers: traceparent(dead, deadSpan)},
	}
	if err := producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ws.Expect("observation/signal/notification/created")
	}
	req, _ := http.NewRequest("POST", "http://"+info.HTTPAddr+"/socket/websocket/clients/broadcast", strings.NewReader(`{"topic":"sys/traced"}`))
	req.Header.Set("Authorization", "Bearer "+testkit.APIKey)
	req.Header.Set("traceparent", "00-"+rest+"-"+restSpan+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ws.Expect("sys/traced")
	testkit.Eventually(t, 10*time.Second, "the dead letter to be logged", func() bool { return strings.Contains(logs.String(), "record kept as dead letter") })

	// Stopping exports what is left.
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return")
	}

	got := recv.byTrace()
	if len(recv.bad) > 0 {
		t.Errorf("bad exports to %v", recv.bad)
	}
	for id := range got {
		if id != traced && id != dead && id != rest {
			t.Errorf("spans of trace %s (unsampled or untraced input): %d", id, len(got[id]))
		}
	}
	spans := map[string]*tracepb.Span{}
	for _, s := range got[traced] {
		if spans[s.Name] != nil {
			t.Errorf("two %s spans for one notification", s.Name)
		}
		spans[s.Name] = s
	}
	parentOf := func(name string) string {
		if s := spans[name]; s != nil {
			return hex.EncodeToString(s.ParentSpanId)
		}
		return "(no " + name + " span)"
	}
	spanID := func(name string) string {
		if s := spans[name]; s != nil {
			return hex.EncodeToString(s.SpanId)
		}
		return "(none)"
	}
	if p := parentOf("signal.consume"); p != producerSpan {
		t.Errorf("consume's parent %s, want the producer's span %s", p, producerSpan)
	}
	if p := parentOf("signal.persist"); p != spanID("signal.consume") {
		t.Errorf("persist's parent %s, want consume %s", p, spanID("signal.consume"))
	}
	if p := parentOf("signal.push"); p != spanID("signal.persist") {
		t.Errorf("push's parent %s, want persist %s", p, spanID("signal.persist"))
	}
	if len(spans) != 3 {
		t.Errorf("spans of the traced notification: %v", names(got[traced]))
	}
	if s := spans["signal.consume"]; s != nil && s.Kind != tracepb.Span_SPAN_KIND_CONSUMER {
		t.Errorf("consume kind %v", s.Kind)
	}
	if s := spans["signal.push"]; s != nil && (attr(s, "signal.committed") != "true" || attr(s, "signal.notifications") != "1") {
		t.Errorf("push attributes %v", s.Attributes)
	}
	for _, s := range spans {
		if s.EndTimeUnixNano < s.StartTimeUnixNano || s.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("span %s: %v", s.Name, s)
		}
	}
	// The REST send: one server span under the caller's.
	if r := got[rest]; len(r) != 1 || r[0].Name != "POST /socket/websocket/clients/broadcast" || hex.EncodeToString(r[0].ParentSpanId) != restSpan || r[0].Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("REST send spans: %v", r)
	}
	// The dead letter: consumed and persisted (never pushed), and its log
	// line carries its trace id.
	if n := names(got[dead]); strings.Join(n, ",") != "signal.consume,signal.persist" && strings.Join(n, ",") != "signal.persist,signal.consume" {
		t.Errorf("dead letter spans %v", n)
	}
	var logged bool
	for _, line := range strings.Split(logs.String(), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) == nil && l["msg"] == "record kept as dead letter" {
			logged = true
			if l["trace_id"] != dead || l["span_id"] == nil {
				t.Errorf("dead letter logged without its trace: %s", line)
			}
		}
	}
	if !logged {
		t.Errorf("no dead letter line in the log")
	}
}

func names(spans []*tracepb.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func attr(s *tracepb.Span, key string) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			switch v := a.Value.GetValue().(type) {
			case *commonpb.AnyValue_StringValue:
				return v.StringValue
			case *commonpb.AnyValue_IntValue:
				return strconv.FormatInt(v.IntValue, 10)
			case *commonpb.AnyValue_BoolValue:
				return strconv.FormatBool(v.BoolValue)
			}
		}
	}
	return ""
}
