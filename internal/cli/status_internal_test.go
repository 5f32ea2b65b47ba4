package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/signal-notify/signal/internal/client"
)

// Every line of status's summary starts its value in one column, the
// longest label (deadletters) included (issue 27, item 10).
func TestStatusLabelsLineUp(t *testing.T) {
	var out bytes.Buffer
	io := &IOStreams{Out: &out, ErrOut: &out, NoColor: true}
	var st client.Status
	st.Ready, st.Instance, st.StartedAt = true, "i-1", time.Now()
	st.Checks = map[string]string{"database": "ok"}
	st.Consumer.Topic, st.Consumer.Group, st.Consumer.Error = "t", "g", "broker unreachable"
	st.DeadLetters.Pending = 2
	st.DeadLetters.ByReason = map[string]int{"no_recipients": 2}
	st.Cluster = []client.InstanceStatus{{ID: "i-1", HTTPAddr: "127.0.0.1:8080", Self: true}, {ID: "i-2", Stale: true, Note: "silent"}}
	printStatus(io, "http://127.0.0.1:8080", st)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")[1:]
	if len(lines) < 8 {
		t.Fatalf("status:\n%s", out.String())
	}
	col := -1
	for _, l := range lines {
		i := strings.IndexFunc(l, func(r rune) bool { return r != ' ' }) // continuation lines
		if f := strings.Fields(l); len(f) > 0 && i == 0 {
			i = len(f[0]) + strings.IndexFunc(l[len(f[0]):], func(r rune) bool { return r != ' ' })
		}
		if col < 0 {
			col = i
		}
		if i != col || l[col-1] != ' ' {
			t.Errorf("value at column %d, want %d: %q", i, col, l)
		}
	}
}
