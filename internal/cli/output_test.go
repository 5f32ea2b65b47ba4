package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/charmbracelet/lipgloss"
)

func TestTablesFitTheTerminal(t *testing.T) {
	headers := []string{"CLIENT", "SUBJECT", "ROOMS", "INSTANCE", "SINCE", "FOR"}
	rows := [][]string{{"3f0c1c2e-1111-2222-3333-444455556666", "signalctl-tail-root",
		"signal/notification/u1 ops/alerts team space/é☃ " + strings.Repeat("room/", 20), "host-abcdef12",
		"10:05:04", "1h2m3s"}}
	for _, width := range []int{100, 80, 60} {
		var out bytes.Buffer
		printTable(&IOStreams{Out: &out, OutTTY: true, NoColor: true, Width: width}, headers, rows, 0)
		lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
		first := lipgloss.Width(lines[0])
		for i, l := range lines {
			if w := lipgloss.Width(l); w > width || w != first {
				t.Errorf("width %d: line %d is %d columns wide (first %d):\n%s", width, i, w, first, out.String())
				break
			}
		}
		if width == 100 && !strings.Contains(out.String(), "3f0c1c2e-1111-2222-3333-444455556666") {
			t.Errorf("width %d: the client id is gone:\n%s", width, out.String())
		}
	}
	t.Run("a table that fits is not stretched", func(t *testing.T) {
		var out bytes.Buffer
		printTable(&IOStreams{Out: &out, OutTTY: true, NoColor: true, Width: 200}, []string{"A"}, [][]string{{"x"}})
		if w := lipgloss.Width(strings.Split(out.String(), "\n")[0]); w > 10 {
			t.Errorf("a one-cell table is %d columns wide", w)
		}
	})
}
