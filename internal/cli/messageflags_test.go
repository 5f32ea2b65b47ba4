package cli_test

import (
	"testing"

	"github.com/spf13/pflag"

	"github.com/signal-notify/signal/internal/cli"
)

// produce and notify build a message from the same flags: a message a
// tester wrote for one works for the other.
func TestProduceAndNotifyTakeTheSameMessageFlags(t *testing.T) {
	root := cli.NewRootCmd(&cli.IOStreams{})
	flagsOf := func(name string) map[string]string {
		cmd, _, err := root.Find([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		cmd.Flags().VisitAll(func(f *pflag.Flag) { out[f.Name] = f.Usage })
		return out
	}
	produce, notify := flagsOf("produce"), flagsOf("notify")
	for _, name := range []string{"scope", "recipients", "organizer", "merchant", "actor", "actor-name", "actor-type",
		"type", "data", "occurred-at", "event-id", "expires-at", "group-key"} {
		p, inP := produce[name]
		n, inN := notify[name]
		switch {
		case !inP || !inN:
			t.Errorf("--%s: produce has it %v, notify %v", name, inP, inN)
		case p != n:
			t.Errorf("--%s: produce says %q, notify %q", name, p, n)
		}
	}
}

func TestNotifyRefusesFileWithMessageFlags(t *testing.T) {
	isolate(t)
	for _, flag := range []string{"--data", "--organizer", "--event-id"} {
		r := run(t, "notify", "--file", "-", flag, "x")
		r.wantCode(t, 2)
		r.wantStderr(t, "--file and the message flags")
	}
}
