package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/kafka"
	"github.com/signal-notify/signal/internal/launch"
	"github.com/signal-notify/signal/internal/pgtest"
	"github.com/signal-notify/signal/internal/testkit"
)

// interopCodecs are Kafka's compression codecs, every one of which other
// producers may use.
var interopCodecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// interopRecord is one record another client produces.
type interopRecord struct {
	key     []byte // nil: a null key
	value   []byte
	headers [][2]string
}

// interopRecords are, for one client and codec: a valid message with a
// key and headers, one with a null key, one with a key that is not UTF-8,
// and an invalid one (a dead letter, which keeps key, value and headers
// byte for byte).
func interopRecords(client, codec string) []interopRecord {
	msg := func(variant string) []byte {
		return testkit.Message("users", []string{"interop"}, func(m map[string]any) {
			m["data"] = map[string]any{"payment": map[string]any{"subject": client + " " + codec + " " + variant}, "client": client, "codec": codec, "variant": variant,
				// Compressible: librdkafka sends a batch uncompressed when the codec would not shrink it.
				"note": strings.Repeat("a notification for the interop test ", 20)}
		})
	}
	hdrs := [][2]string{{"trace-id", "t-" + client + "-" + codec}, {"source", client}}
	return []interopRecord{
		{key: []byte("org-1"), value: msg("keyed"), headers: hdrs},
		{key: nil, value: msg("null key")},
		{key: []byte("\xff\xfek-" + codec), value: msg("binary key")},
		{key: []byte("\xff\xfebad-" + codec), value: []byte(strings.Repeat("not json ", 40) + "from " + client + " " + codec), headers: hdrs},
	}
}

// requireInterop skips when kcat or kafkajs are missing, unless make test
// (SIGNAL_INTEROP=required) runs it: then they must be there.
func requireInterop(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs("testdata/kafkajs")
	_, errKcat := exec.LookPath("kcat")
	_, errNode := exec.LookPath("node")
	_, errMods := os.Stat(filepath.Join(dir, "node_modules", "kafkajs"))
	if errKcat != nil || errNode != nil || errMods != nil {
		msg := "kcat or kafkajs missing: run scripts/ensure-interop.sh (make test does)"
		if os.Getenv("SIGNAL_INTEROP") == "required" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// kcatProduce sends records with kcat (librdkafka): those with a key in one
// run with a key delimiter, those without in another (a null key).
func kcatProduce(t *testing.T, broker, codec string, recs []interopRecord) {
	t.Helper()
	for _, keyed := range []bool{true, false} {
		var in bytes.Buffer
		var headers [][2]string
		for _, r := range recs {
			if (r.key != nil) != keyed {
				continue
			}
			if len(r.headers) > 0 {
				headers = r.headers // kcat sets the same headers on every record of a run
			}
			if keyed {
				in.Write(r.key)
				in.WriteByte('\t')
			}
			in.Write(r.value)
			in.WriteByte('\n')
		}
		args := []string{"-P", "-b", broker, "-t", testkit.Topic, "-z", codec, "-X", "acks=all"}
		if keyed {
			args = append(args, "-K", "\t")
		}
		for _, h := range headers {
			args = append(args, "-H", h[0]+"="+h[1])
		}
		cmd := launch.Command("kcat", args...)
		cmd.Stdin = &in
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat %v: %v\n%s", args, err, out)
		}
	}
}

func kafkajsProduce(t *testing.T, dir, broker, codec string, recs []interopRecord) {
	t.Helper()
	type jsRecord struct {
		Key     *string           `json:"key"`
		Value   string            `json:"value"`
		Headers map[string]string `json:"headers,omitempty"`
	}
	var in []jsRecord
	for _, r := range recs {
		j := jsRecord{Value: base64.StdEncoding.EncodeToString(r.value)}
		if r.key != nil {
			k := base64.StdEncoding.EncodeToString(r.key)
			j.Key = &k
		}
		if len(r.headers) > 0 {
			j.Headers = map[string]string{}
			for _, h := range r.headers {
				j.Headers[h[0]] = h[1]
			}
		}
		in = append(in, j)
	}
	b, _ := json.Marshal(in)
	cmd := launch.Command("node", filepath.Join(dir, "produce.js"), broker, testkit.Topic, codec)
	cmd.Stdin = bytes.NewReader(b)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kafkajs %s: %v\n%s", codec, err, out)
	}
}

// Records that librdkafka (Debian's kcat) and kafkajs produce to the
// embedded broker (the one serve --dev starts; outside --dev serve refuses
// it, so the test starts it), with every codec, with headers, a null key
// and a key that is not UTF-8, become exactly the right rows, frames and
// dead letters.
func TestKcatAndKafkajsProduceWithEveryCodec(t *testing.T) {
	t.Parallel()
	dir := requireInterop(t)
	st, url := pgtest.Open(t)
	emb, err := kafka.StartEmbedded(0, testkit.Topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	broker := emb.Addr
	env := &testkit.Env{Broker: broker, DBURL: url, Store: st}
	p := startServe(t, env)
	c := testkit.Dial(t, p.wsURL(), testkit.Token(t, "interop"))
	c.Welcome()

	expected := map[string]map[string]any{} // subject → data
	deadWant := map[string]interopRecord{}  // value → record
	for _, client := range []string{"kcat", "kafkajs"} {
		for _, codec := range interopCodecs {
			recs := interopRecords(client, codec)
			for _, r := range recs {
				if d, err := event.Decode(r.value); err == nil {
					var data map[string]any
					_ = json.Unmarshal(d.CanonicalData, &data)
					expected[client+" "+codec+" "+data["variant"].(string)] = data
				} else {
					deadWant[string(r.value)] = r
				}
			}
			switch client {
			case "kcat":
				kcatProduce(t, broker, codec, recs)
			case "kafkajs":
				kafkajsProduce(t, dir, broker, codec, recs)
			}
		}
	}

	// Frames: one per valid record, with exactly the data sent.
	got := map[string]bool{}
	for len(got) < len(expected) {
		f := c.Next(20 * time.Second)
		if f.Topic != "observation/signal/notification/created" {
			continue
		}
		var payload struct {
			Content string         `json:"content"`
			Data    map[string]any `json:"data"`
		}
		if err := json.Unmarshal(f.Data, &payload); err != nil {
			t.Fatal(err)
		}
		subject := fmt.Sprint(payload.Data["client"], " ", payload.Data["codec"], " ", payload.Data["variant"])
		wantData, ok := expected[subject]
		switch {
		case !ok:
			t.Errorf("unexpected frame %s", f.Data)
		case got[subject]:
			t.Errorf("frame pushed twice: %s", f.Data)
		case !jsonEqual(payload.Data, wantData):
			t.Errorf("frame data %v, want %v", payload.Data, wantData)
		case payload.Content != "Alice completed a payment for "+subject:
			t.Errorf("content %q", payload.Content)
		}
		got[subject] = true
	}
	c.Quiet(300 * time.Millisecond)

	// Rows: one per valid record (one recipient each), with exactly the data sent.
	rows, err := st.Pool.Query(context.Background(), `SELECT data, content FROM notifications WHERE recipient_id = 'interop'`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var data map[string]any
		var content string
		if err := rows.Scan(&data, &content); err != nil {
			t.Fatal(err)
		}
		n++
		subject := fmt.Sprint(data["client"], " ", data["codec"], " ", data["variant"])
		if w, ok := expected[subject]; !ok || !jsonEqual(data, w) || content != "Alice completed a payment for "+subject {
			t.Errorf("row %v %q does not match what was sent", data, content)
		}
	}
	if n != len(expected) {
		t.Errorf("%d rows, want %d", n, len(expected))
	}

	// Dead letters keep the key, value and headers byte for byte.
	testkit.Eventually(t, 10*time.Second, "the dead letters", func() bool {
		return testkit.Count(t, st, `SELECT count(*) FROM dead_letters`) == len(deadWant)
	})
	dl, err := st.Pool.Query(context.Background(), `SELECT key, value, headers FROM dead_letters`)
	if err != nil {
		t.Fatal(err)
	}
	for dl.Next() {
		var key, value []byte
		var headers []event.Header
		if err := dl.Scan(&key, &value, &headers); err != nil {
			t.Fatal(err)
		}
		w, ok := deadWant[string(value)]
		if !ok {
			t.Errorf("unexpected dead letter %q", value)
			continue
		}
		if !bytes.Equal(key, w.key) {
			t.Errorf("dead letter %q: key %q, want %q", value, key, w.key)
		}
		var hs, ws []string
		for _, h := range headers {
			hs = append(hs, h.Key+"="+string(h.Value))
		}
		for _, h := range w.headers {
			ws = append(ws, h[0]+"="+h[1])
		}
		sort.Strings(hs)
		sort.Strings(ws)
		if strings.Join(hs, ",") != strings.Join(ws, ",") {
			t.Errorf("dead letter %q: headers %v, want %v", value, hs, ws)
		}
	}
	checkCodecs(t, broker, 2*len(interopCodecs)*len(interopRecords("", "")))
}

// checkCodecs reads the topic back: every record's batch was compressed
// with the codec its value names (the clients really used it).
//
// One exception, found here: librdkafka 2.0.2 (Debian's kcat) derives its
// gzip, snappy and lz4 support from the broker offering Produce v2 and
// Fetch v2, which kfake (like Kafka 4.0 after KIP-896) no longer does; it
// then sends those batches uncompressed ("Broker does not support
// compression type gzip: not compressing batch" at debug=msg). zstd is
// detected from newer versions and is compressed.
func checkCodecs(t *testing.T, broker string, want int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(testkit.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := 0
	uncompressed := map[string]bool{}
	defer func() {
		if len(uncompressed) > 0 {
			t.Logf("kcat (librdkafka) sent these codecs' batches uncompressed, as it does with brokers that no longer offer Produce/Fetch v2: %v", uncompressed)
		}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for n < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			n++
			for code, codec := range interopCodecs {
				if bytes.Contains(r.Value, []byte(`"codec":"`+codec+`"`)) || bytes.HasSuffix(r.Value, []byte(" "+codec)) {
					got := r.Attrs.CompressionType()
					fromKcat := bytes.Contains(r.Value, []byte(`"client":"kcat"`)) || bytes.Contains(r.Value, []byte("from kcat "))
					if got == 0 && fromKcat && codec != "zstd" && codec != "none" {
						uncompressed[codec] = true
						continue
					}
					if got != uint8(code) {
						t.Errorf("record %q: compression type %d, want %d (%s)", r.Value, got, code, codec)
					}
				}
			}
		})
	}
	if n != want {
		t.Errorf("%d records in the topic, want %d", n, want)
	}
}

// The tour's dead-letter step (issue 15, item 1): `produce --file -
// --no-validate <<< 'not json'` makes a dead letter, listed by deadletters.
func TestProduceNoValidateMakesADeadLetter(t *testing.T) {
	t.Parallel()
	env := testkit.NewEnv(t)
	p := startServe(t, env)
	cmd := launch.Command(signalctl(t), "produce", "--brokers", env.Broker, "--file", "-", "--no-validate")
	cmd.Env = append(os.Environ(), "SIGNAL_CONFIG=")
	cmd.Stdin = strings.NewReader("not json\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	testkit.Eventually(t, 10*time.Second, "the dead letter", func() bool {
		return testkit.Count(t, env.Store, `SELECT count(*) FROM dead_letters WHERE value = 'not json' AND reason = 'malformed_json'`) == 1
	})
	list := launch.Command(signalctl(t), "deadletters", "list", "--database-url", env.DBURL)
	list.Env = append(os.Environ(), "SIGNAL_CONFIG=")
	out, err := list.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "malformed_json") {
		t.Errorf("deadletters list: %v\n%s", err, out)
	}
	_ = p
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
