package report

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// Row is one measured figure, with the reference it is compared with in
// the same run and the target it should meet.
type Row struct {
	Figure string  `json:"figure"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"` // "msg/s", "ms", "KiB", "s", "" …
	// Reference names what Value is compared with ("" for none).
	Reference string  `json:"reference,omitempty"`
	RefValue  float64 `json:"refValue,omitempty"`
	// Target is the goal in words, for example "≥ 0.8× COPY" or "≤ 25 ms".
	Target string `json:"target,omitempty"`
	// Met says whether the target was met; nil when there is none or it
	// could not be judged.
	Met *bool `json:"met,omitempty"`
}

// Ratio is Value / RefValue (NaN without a reference).
func (r Row) Ratio() float64 {
	if r.Reference == "" {
		return math.NaN()
	}
	return Ratio(r.Value, r.RefValue)
}

// Section is one scenario's table.
type Section struct {
	Title string `json:"title"`
	// Method says in a few sentences what was measured and how.
	Method string   `json:"method"`
	Rows   []Row    `json:"rows"`
	Notes  []string `json:"notes,omitempty"`
	// Charts are file names (relative to the report) shown under the table.
	Charts []string `json:"charts,omitempty"`
}

// Target is one line of the summary: a goal of the issue and how this run
// did against it.
type Target struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      *bool  `json:"met,omitempty"`
}

// Report is a whole run.
type Report struct {
	Title    string    `json:"title"`
	Date     time.Time `json:"date"`
	Command  string    `json:"command"`
	Duration time.Duration
	Machine  Machine   `json:"machine"`
	Targets  []Target  `json:"targets"`
	Sections []Section `json:"sections"`
	Notes    []string  `json:"notes,omitempty"`
}

// Bool returns a pointer to b, for Row.Met and Target.Met.
func Bool(b bool) *bool { return &b }

// AtMost and AtLeast judge a figure against a limit; a NaN figure (not
// measured) cannot be judged.
func AtMost(v, limit float64) *bool {
	if math.IsNaN(v) {
		return nil
	}
	return Bool(v <= limit)
}

// AtLeast: see AtMost.
func AtLeast(v, limit float64) *bool {
	if math.IsNaN(v) {
		return nil
	}
	return Bool(v >= limit)
}

// Below: strictly less than limit.
func Below(v, limit float64) *bool {
	if math.IsNaN(v) {
		return nil
	}
	return Bool(v < limit)
}

// FormatValue prints v in unit with a precision fit for reading.
func FormatValue(v float64, unit string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	var s string
	switch unit {
	case "msg/s", "rows/s", "conn/s", "clients", "":
		if math.Abs(v) >= 100 || v == math.Trunc(v) {
			s = Thousands(int64(math.Round(v)))
		} else {
			s = strconv.FormatFloat(v, 'f', 2, 64)
		}
	case "ms":
		s = strconv.FormatFloat(v, 'f', msDecimals(v), 64)
	default:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	}
	if unit != "" {
		s += " " + unit
	}
	return s
}

func msDecimals(v float64) int {
	switch a := math.Abs(v); {
	case a < 10:
		return 2
	case a < 100:
		return 1
	default:
		return 0
	}
}

// Thousands prints n with commas between groups of three digits.
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// FormatRatio prints r as "0.83×" (NaN as a dash).
func FormatRatio(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "—"
	}
	switch {
	case r >= 100:
		return strconv.FormatFloat(r, 'f', 0, 64) + "×"
	case r >= 10:
		return strconv.FormatFloat(r, 'f', 1, 64) + "×"
	default:
		return strconv.FormatFloat(r, 'f', 2, 64) + "×"
	}
}

// FormatMet prints a tri-state verdict.
func FormatMet(m *bool) string {
	switch {
	case m == nil:
		return ""
	case *m:
		return "yes"
	default:
		return "**no**"
	}
}

// cell keeps table cells on one line and pipes escaped.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// WriteMarkdown writes the report.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	fmt.Fprintf(&b, "Run on %s", r.Date.UTC().Format("2006-01-02 15:04 MST"))
	if r.Duration > 0 {
		fmt.Fprintf(&b, " (took %s)", r.Duration.Round(time.Second))
	}
	b.WriteString(".")
	if r.Command != "" {
		fmt.Fprintf(&b, " Command: `%s`.", r.Command)
	}
	b.WriteString("\n\n## Machine\n\n")
	b.WriteString(r.Machine.Markdown())
	if len(r.Targets) > 0 {
		b.WriteString("\n## Targets\n\nBenchmark targets of this 2-core machine, not test assertions.\n\n")
		b.WriteString("| target | measured | met? |\n|---|---|---|\n")
		for _, t := range r.Targets {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", cell(t.Goal), cell(t.Measured), FormatMet(t.Met))
		}
	}
	for _, s := range r.Sections {
		fmt.Fprintf(&b, "\n## %s\n\n", s.Title)
		if s.Method != "" {
			fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(s.Method))
		}
		if len(s.Rows) > 0 {
			b.WriteString("| figure | value | reference | ratio | target | met? |\n|---|---:|---|---:|---|---|\n")
			for _, row := range s.Rows {
				ref := ""
				if row.Reference != "" {
					ref = row.Reference + ": " + FormatValue(row.RefValue, row.Unit)
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", cell(row.Figure), FormatValue(row.Value, row.Unit),
					cell(ref), FormatRatio(row.Ratio()), cell(row.Target), FormatMet(row.Met))
			}
		}
		if len(s.Notes) > 0 {
			b.WriteString("\n")
			for _, n := range s.Notes {
				fmt.Fprintf(&b, "- %s\n", strings.TrimSpace(n))
			}
		}
		for _, c := range s.Charts {
			fmt.Fprintf(&b, "\n![%s](%s)\n", c, c)
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", strings.TrimSpace(n))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteFile writes the report as Markdown to path.
func (r *Report) WriteFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := r.WriteMarkdown(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
