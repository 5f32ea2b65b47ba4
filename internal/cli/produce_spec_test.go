package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/signal-notify/signal/internal/testkit"
)

// produce checks a message by the rules the consumer applies: the decoder's
// fixtures, which internal/event also validates against the AsyncAPI schema
// of TActivityNotificationMessage, are sent when valid and refused with the
// decoder's reason when not, and nothing invalid reaches the topic.
func TestProduceAppliesTheRulesOfTheAsyncAPISchema(t *testing.T) {
	isolate(t)
	broker := testkit.Broker(t)
	files, _ := filepath.Glob("../event/testdata/messages/*--*")
	if len(files) < 30 {
		t.Fatalf("only %d fixtures", len(files))
	}
	sent := 0
	for _, f := range files {
		reason, _, _ := strings.Cut(filepath.Base(f), "--")
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := run(t, "produce", "--brokers", broker, "--file", f)
			switch reason {
			case "valid":
				r.wantCode(t, 0)
				sent++
			case "malformed_json":
				r.wantCode(t, 1)
				if !strings.Contains(r.Stderr, "not JSON") && !strings.Contains(r.Stderr, "malformed_json") && !strings.Contains(r.Stderr, "holds no message") {
					t.Errorf("stderr %q does not say the message is not JSON", r.Stderr)
				}
			default:
				r.wantCode(t, 1)
				r.wantStderr(t, "would be refused: "+reason+":")
			}
		})
	}
	if n := topicRecords(t, broker, testkit.Topic); n != int64(sent) {
		t.Errorf("%d records on the topic, want the %d valid messages", n, sent)
	}
}
