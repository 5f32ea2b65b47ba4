package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/event"
	"github.com/signal-notify/signal/internal/kafka"
)

// ProduceOptions are produce's inputs.
type ProduceOptions struct {
	g               *globals
	Message         MessageFlags
	Key             string
	File            string
	Count           int
	Rate            float64
	NoValidate      bool
	Compression     string
	Headers         []string
	Output          string
	messageFlagsSet bool
	flags           map[string]*pflag.Flag
}

func newCmdProduce(g *globals) *cobra.Command {
	o := &ProduceOptions{g: g}
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Send a test TActivityNotificationMessage to Kafka",
		Long: `Build a TActivityNotificationMessage from flags, or read messages from a
file (--file F, or --file - for stdin: one JSON object, or several one after
the other), validate them as serve will, and send them to the topic.

Each message's key is its organizerId, so one organizer's events keep their
order. Without --brokers it uses kafka.brokers, or the embedded broker of
"serve --dev" on 127.0.0.1:9092.

--no-validate sends messages serve will refuse, to test dead letters: with
--file, input that is not a sequence of JSON values is sent line by line,
each non-empty line one record, byte for byte.

--compression compresses the record batches as a producer may (none, gzip,
snappy, lz4, zstd), and --header adds a record header (repeatable), so QA
can reproduce what other producers send; serve keeps headers with dead
letters.

For load, --count repeats the message (each with its own occurredAt, so
they are distinct events) and --rate paces it; a progress bar shows on a
terminal and a summary is printed at the end.`,
		Example: `  signalctl produce --scope users --recipients u1,u2
  signalctl produce --scope org --organizer org-1 --type PAYMENT_SUCCESS --data '{"payment":{"subject":"Gold ticket","id":"p-42"}}'
  signalctl produce --scope merchant --organizer org-1 --merchant m-7
  signalctl produce --file message.json
  cat messages.ndjson | signalctl produce --file -
  signalctl produce --file - --no-validate <<< 'not json'
  signalctl produce --recipients u1 --compression zstd --header trace-id=abc123 --header source=qa
  signalctl produce --recipients u1 --count 100000 --rate 5000
  signalctl produce --recipients u1 --event-id pay-42 --expires-at 2026-12-31T00:00:00Z --group-key payments`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.messageFlagsSet = o.Message.given(cmd)
			return produceRun(cmd.Context(), o)
		},
	}
	addMessageFlags(cmd, g, &o.Message, `{"payment":{"subject":"Test payment"}}`)
	f := cmd.Flags()
	f.StringVar(&o.Key, "key", "", "record key (default: the organizerId)")
	f.StringVar(&o.File, "file", "", "read messages from a file, - for stdin")
	f.IntVar(&o.Count, "count", 1, "send the message this many times")
	f.Float64Var(&o.Rate, "rate", 0, "messages per second (0: as fast as possible)")
	f.BoolVar(&o.NoValidate, "no-validate", false, "send even invalid messages, and with --file non-JSON lines as they are (to test dead letters)")
	f.StringVar(&o.Compression, "compression", "none", "compression of the record batches: "+strings.Join(compressionNames, ", "))
	f.StringArrayVar(&o.Headers, "header", nil, "record header KEY=VALUE (repeatable)")
	f.StringSlice("brokers", nil, "Kafka seed brokers (kafka.brokers)")
	f.String("topic", "", "Kafka topic (kafka.topic)")
	addOutputFlag(cmd, &o.Output)
	o.flags = map[string]*pflag.Flag{"kafka.brokers": f.Lookup("brokers"), "kafka.topic": f.Lookup("topic")}
	_ = cmd.RegisterFlagCompletionFunc("brokers", fixedValues("127.0.0.1:9092"))
	_ = cmd.RegisterFlagCompletionFunc("compression", fixedValues(compressionNames...))
	_ = cmd.RegisterFlagCompletionFunc("header", cobra.NoFileCompletions)
	_ = cmd.MarkFlagFilename("file", "json", "ndjson")
	return cmd
}

// produceTimeout bounds reaching the brokers and delivering each record.
const produceTimeout = 30 * time.Second

// compressionNames are --compression's values, in Kafka's codec order.
var compressionNames = []string{"none", "gzip", "snappy", "lz4", "zstd"}

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, usageErrorf("--compression %q: want one of %s", name, strings.Join(compressionNames, ", "))
}

// parseHeaders reads --header KEY=VALUE flags, in order.
func parseHeaders(flags []string) ([]kgo.RecordHeader, error) {
	var out []kgo.RecordHeader
	for _, h := range flags {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return nil, usageErrorf("--header %q: want KEY=VALUE", h)
		}
		out = append(out, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return out, nil
}

// outgoing is one message to send.
type outgoing struct {
	key   []byte
	value []byte
}

// produced is where a message landed.
type produced struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

func produceRun(ctx context.Context, o *ProduceOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	codec, err := compressionCodec(o.Compression)
	if err != nil {
		return err
	}
	headers, err := parseHeaders(o.Headers)
	if err != nil {
		return err
	}
	cfg, err := o.g.load(o.flags)
	if err != nil {
		return err
	}
	msgs, err := o.messages()
	if err != nil {
		return err
	}
	cl, brokers, err := produceClient(ctx, cfg, codec)
	if err != nil {
		return err
	}
	defer cl.Close()
	start := time.Now()
	results, sent, err := o.send(ctx, cl, msgs, headers)
	elapsed := time.Since(start)
	if err != nil {
		return fmt.Errorf("produce to %v: %w (is the broker running? serve --dev starts one on 127.0.0.1:9092)", brokers, err)
	}
	if ctx.Err() != nil {
		fmt.Fprintf(o.g.io.ErrOut, "Interrupted after %d of %d messages.\n", sent, len(results))
		results = results[:sent]
	}
	return printProduced(o.g.io, o.Output, cfg.Kafka.Topic, results, elapsed)
}

// check refuses flag values and combinations that cannot work.
func (o *ProduceOptions) check() error {
	if err := checkFormat(o.Output); err != nil {
		return err
	}
	if o.Count < 1 {
		return usageErrorf("--count must be at least 1")
	}
	if o.Rate < 0 {
		return usageErrorf("--rate must not be negative")
	}
	if o.File != "" && o.messageFlagsSet {
		return usageErrorf("--file and the message flags (--scope, --recipients, --data, …) do not mix")
	}
	return nil
}

// produceClient is a producer for the configured (or the dev) brokers,
// checked to answer: without that, records for unreachable brokers wait
// forever.
func produceClient(ctx context.Context, cfg *config.Config, codec kgo.CompressionCodec) (*kgo.Client, []string, error) {
	brokers := cfg.Kafka.Brokers
	if len(brokers) == 0 || cfg.UsesEmbeddedBroker() {
		brokers = []string{devBroker(cfg)}
	}
	opts, err := kafka.ClientOpts(cfg.Kafka, brokers)
	if err != nil {
		return nil, nil, err
	}
	cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(cfg.Kafka.Topic), kgo.ProducerLinger(5*time.Millisecond),
		kgo.RecordDeliveryTimeout(produceTimeout), kgo.ProducerBatchCompression(codec))...)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka client: %w", err)
	}
	pingCtx, cancelPing := context.WithTimeout(ctx, produceTimeout)
	err = cl.Ping(pingCtx)
	cancelPing()
	if err != nil {
		err = fmt.Errorf("cannot reach the Kafka brokers %v: %w (is the broker running? serve --dev starts one on 127.0.0.1:9092)", brokers, kafka.Explain(cl, err))
		cl.Close()
		return nil, nil, err
	}
	return cl, brokers, nil
}

// send produces every message Count times at Rate, with a progress bar,
// and returns where each went, how many were sent (fewer when ctx ended)
// and the first delivery error.
func (o *ProduceOptions) send(ctx context.Context, cl *kgo.Client, msgs []outgoing, headers []kgo.RecordHeader) ([]produced, int, error) {
	total := len(msgs) * o.Count
	bar := newProgress(o.g.io, total, "producing")
	results := make([]produced, total)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	i := 0
send:
	for n := 0; n < o.Count; n++ {
		for _, m := range msgs {
			if !o.pace(ctx, start, i) {
				break send
			}
			value := m.value
			if o.Count > 1 && o.Message.OccurredAt == "" && o.File == "" {
				value = o.withOccurredAt(value, time.Now())
			}
			idx := i
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Key: m.key, Value: value, Headers: headers}, func(r *kgo.Record, err error) {
				defer wg.Done()
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				results[idx] = produced{Partition: r.Partition, Offset: r.Offset}
				bar.Add(1)
			})
			i++
		}
	}
	wg.Wait()
	bar.Finish()
	return results, i, firstErr
}

// pace waits for message i's turn at Rate; false when ctx ended.
func (o *ProduceOptions) pace(ctx context.Context, start time.Time, i int) bool {
	if o.Rate > 0 {
		if d := time.Until(start.Add(time.Duration(float64(i) / o.Rate * float64(time.Second)))); d > 0 {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(d):
			}
		}
	}
	return ctx.Err() == nil
}

func printProduced(io *IOStreams, format, topic string, results []produced, elapsed time.Duration) error {
	if len(results) <= 10 {
		if format == FormatJSON {
			return writeJSON(io.Out, results)
		}
		for _, r := range results {
			fmt.Fprintf(io.Out, "%s partition %d offset %d\n", topic, r.Partition, r.Offset)
		}
		return nil
	}
	rate := float64(len(results)) / elapsed.Seconds()
	perPartition := map[int32]int{}
	for _, r := range results {
		perPartition[r.Partition]++
	}
	if format == FormatJSON {
		return writeJSON(io.Out, map[string]any{"topic": topic, "produced": len(results), "seconds": elapsed.Seconds(), "perSecond": rate, "perPartition": perPartition})
	}
	fmt.Fprintf(io.Out, "produced %d messages to %s in %s (%.0f/s)\n", len(results), topic, elapsed.Round(time.Millisecond), rate)
	return nil
}

// messages returns the messages to send, validated unless --no-validate.
func (o *ProduceOptions) messages() ([]outgoing, error) {
	if o.File != "" {
		return o.fileMessages()
	}
	msg, err := o.Message.build(o.g.io.In, time.Now())
	if err != nil {
		return nil, err
	}
	value, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	if !o.NoValidate {
		if _, err := event.Decode(value); err != nil {
			return nil, usageErrorf("the message would be refused: %v", err)
		}
	}
	return []outgoing{{key: o.key(o.Message.Organizer), value: value}}, nil
}

func (o *ProduceOptions) key(organizer string) []byte {
	if o.Key != "" {
		return []byte(o.Key)
	}
	return []byte(organizer)
}

func (o *ProduceOptions) fileMessages() ([]outgoing, error) {
	var r io.Reader = o.g.io.In
	if o.File != "-" {
		f, err := os.Open(o.File)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	input, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.File, err)
	}
	dec := json.NewDecoder(bytes.NewReader(input))
	var out []outgoing
	for n := 1; ; n++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			if o.NoValidate {
				return o.lineMessages(input)
			}
			return nil, fmt.Errorf("%s: message %d is not JSON: %w (--no-validate sends such input line by line, as it is)", o.File, n, err)
		}
		organizer := ""
		if !o.NoValidate {
			d, err := event.Decode(raw)
			if err != nil {
				return nil, fmt.Errorf("%s: message %d would be refused: %v", o.File, n, err)
			}
			organizer = d.OrganizerID
		} else {
			// Best effort: an invalid message keeps its organizer's key.
			var m struct {
				OrganizerID string `json:"organizerId"`
			}
			_ = json.Unmarshal(raw, &m)
			organizer = m.OrganizerID
		}
		out = append(out, outgoing{key: o.key(organizer), value: bytes.Clone(raw)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no message", o.File)
	}
	return out, nil
}

// lineMessages is --no-validate's reading of input that is not JSON: each
// non-empty line is one record's value, byte for byte (without its line
// end), keyed by --key if set (else no key).
func (o *ProduceOptions) lineMessages(input []byte) ([]outgoing, error) {
	var out []outgoing
	for _, line := range bytes.Split(input, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var key []byte
		if o.Key != "" {
			key = []byte(o.Key)
		}
		out = append(out, outgoing{key: key, value: bytes.Clone(line)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no message", o.File)
	}
	return out, nil
}

// withOccurredAt returns value with occurredAt set to t (load: distinct events).
func (o *ProduceOptions) withOccurredAt(value []byte, t time.Time) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(value, &m) != nil {
		return value
	}
	m["occurredAt"], _ = json.Marshal(t.UTC().Format(time.RFC3339Nano))
	b, _ := json.Marshal(m)
	return b
}

// readDataArg reads a JSON argument given inline, as @file, or as - (stdin).
func readDataArg(arg string, stdin io.Reader) (json.RawMessage, error) {
	var b []byte
	var err error
	switch {
	case arg == "-":
		b, err = io.ReadAll(stdin)
	case len(arg) > 0 && arg[0] == '@':
		b, err = os.ReadFile(arg[1:])
	default:
		b = []byte(arg)
	}
	if err != nil {
		return nil, fmt.Errorf("--data: %w", err)
	}
	b = bytes.TrimSpace(b)
	if !json.Valid(b) {
		return nil, usageErrorf("--data is not valid JSON: %s", truncateText(string(b), 80))
	}
	return b, nil
}

func truncateText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// fitText shortens a long table cell on a terminal only, where the table is
// fitted to the screen; a pipe or a file gets it whole (README: fitting
// happens only on a terminal).
func fitText(io *IOStreams, s string, n int) string {
	if !io.OutTTY {
		return s
	}
	return truncateText(s, n)
}
