package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
	"github.com/muesli/termenv"
	"github.com/spf13/cobra"
)

// Output formats of listing commands.
const (
	FormatTable = "table"
	FormatJSON  = "json"
)

var outputFormats = []string{FormatTable, FormatJSON}

// addOutputFlag adds -o/--output with completion of its values.
func addOutputFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVarP(dst, "output", "o", FormatTable, "output format: table or json")
	_ = cmd.RegisterFlagCompletionFunc("output", fixedValues(outputFormats...))
}

func checkFormat(f string) error {
	if f != FormatTable && f != FormatJSON {
		return usageErrorf("--output must be table or json, got %q", f)
	}
	return nil
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// printTable prints rows under headers: a bordered lipgloss table on a
// terminal (coloured unless NO_COLOR), aligned plain columns otherwise, so
// scripts and pipes get text without escape codes. On a terminal narrower
// than the table, cells wrap so the borders stay whole.
//
// keep names columns (by index) that hold values to copy, such as ids: they
// are narrowed only when nothing else can be.
func printTable(io *IOStreams, headers []string, rows [][]string, keep ...int) {
	if !io.OutTTY {
		tw := tabwriter.NewWriter(io.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(headers, "\t"))
		for _, r := range rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		tw.Flush()
		return
	}
	r := lipgloss.NewRenderer(io.Out)
	if io.NoColor {
		r.SetColorProfile(termenv.Ascii) // no colour codes
	}
	header := r.NewStyle().Bold(true).Padding(0, 1)
	cell := r.NewStyle().Padding(0, 1)
	fixed := fixedColumns(headers, rows, io.Width, keep)
	t := table.New().
		Border(lipgloss.RoundedBorder()).
		BorderStyle(r.NewStyle().Foreground(lipgloss.Color("8"))).
		Headers(headers...).
		Rows(rows...).
		StyleFunc(func(row, col int) lipgloss.Style {
			s := cell
			if row == table.HeaderRow {
				s = header
				if !io.NoColor {
					s = s.Foreground(lipgloss.Color("12"))
				}
			}
			if fixed != nil && fixed[col] > 0 {
				s = s.Width(fixed[col])
			}
			return s
		})
	if fixed != nil {
		t.Width(io.Width)
	}
	fmt.Fprintln(io.Out, t.Render())
}

// fixedColumns decides how a table fits into width columns: the widest
// columns are narrowed first, so short ones (ids, times) keep their width and
// long ones (room lists) wrap. It returns the width of each column to keep
// whole (0 for the ones to narrow), or nil when the table fits as it is.
func fixedColumns(headers []string, rows [][]string, width int, keep []int) []int {
	if width <= 0 {
		return nil
	}
	natural := make([]int, len(headers))
	for i, h := range headers {
		natural[i] = lipgloss.Width(h) + 2 // padding
	}
	for _, r := range rows {
		for i, c := range r {
			if i < len(natural) {
				natural[i] = max(natural[i], lipgloss.Width(c)+2)
			}
		}
	}
	w := append([]int(nil), natural...)
	total := len(w) + 1 // borders
	for _, x := range w {
		total += x
	}
	if total <= width {
		return nil
	}
	const minColumn = 10
	narrow := func(skipKept bool) {
		for total > width {
			widest := -1
			for i := range w {
				if skipKept && slices.Contains(keep, i) {
					continue
				}
				if widest < 0 || w[i] > w[widest] {
					widest = i
				}
			}
			if widest < 0 || w[widest] <= minColumn {
				return // as narrow as it gets
			}
			w[widest]--
			total--
		}
	}
	narrow(true)
	narrow(false)
	for i := range w {
		if w[i] != natural[i] {
			w[i] = 0
		}
	}
	return w
}

// styled colours s on stderr when allowed (status words in messages).
func styled(io *IOStreams, color, s string) string {
	if !io.ColorErr() {
		return s
	}
	r := lipgloss.NewRenderer(io.ErrOut)
	return r.NewStyle().Foreground(lipgloss.Color(color)).Render(s)
}

// styledOut colours s on stdout when allowed.
func styledOut(io *IOStreams, color, s string) string {
	if !io.ColorOut() {
		return s
	}
	r := lipgloss.NewRenderer(io.Out)
	return r.NewStyle().Foreground(lipgloss.Color(color)).Render(s)
}
