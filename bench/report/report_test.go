package report

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentileIsNearestRank(t *testing.T) {
	s := make([]float64, 100)
	for i := range s {
		s[i] = float64(i + 1) // 1…100
	}
	for _, c := range []struct{ p, want float64 }{{50, 50}, {99, 99}, {100, 100}, {1, 1}, {0, 1}, {99.5, 100}} {
		if got := Percentile(s, c.p); got != c.want {
			t.Errorf("p%v of 1…100 = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Percentile([]float64{7}, 99); got != 7 {
		t.Errorf("p99 of one value = %v", got)
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("percentile of nothing should be NaN")
	}
}

func TestSummarizeDoesNotReorderItsInput(t *testing.T) {
	in := []float64{5, 1, 4, 2, 3}
	s := Summarize(in)
	if s.N != 5 || s.P50 != 3 || s.Max != 5 || s.Mean != 3 || s.P99 != 5 {
		t.Errorf("summary %+v", s)
	}
	if in[0] != 5 || in[1] != 1 {
		t.Errorf("input reordered: %v", in)
	}
	if e := Summarize(nil); e.N != 0 || !math.IsNaN(e.P99) {
		t.Errorf("empty summary %+v", e)
	}
}

func TestRatioRefusesWhatCannotBeCompared(t *testing.T) {
	if r := Ratio(8, 10); r != 0.8 {
		t.Errorf("8/10 = %v", r)
	}
	for _, c := range [][2]float64{{1, 0}, {math.NaN(), 1}, {1, math.NaN()}, {-1, 2}, {math.Inf(1), 1}} {
		if r := Ratio(c[0], c[1]); !math.IsNaN(r) {
			t.Errorf("Ratio(%v, %v) = %v, want NaN", c[0], c[1], r)
		}
	}
}

func TestQuantilesEndAtTheMaximum(t *testing.T) {
	s := make([]float64, 10001)
	for i := range s {
		s[i] = float64(i)
	}
	xs, ys := quantiles(s, 100)
	if len(xs) < 100 || len(xs) > 102 || xs[len(xs)-1] != 10000 || ys[len(ys)-1] != 1 {
		t.Fatalf("%d points, last (%v, %v)", len(xs), xs[len(xs)-1], ys[len(ys)-1])
	}
	for i := 1; i < len(xs); i++ {
		if xs[i] < xs[i-1] || ys[i] <= ys[i-1] {
			t.Fatalf("not increasing at %d", i)
		}
	}
}

func TestFormatting(t *testing.T) {
	cases := map[string]string{
		FormatValue(12345.6, "msg/s"): "12,346 msg/s",
		FormatValue(3.14159, "ms"):    "3.14 ms",
		FormatValue(31.4159, "ms"):    "31.4 ms",
		FormatValue(314.159, "ms"):    "314 ms",
		FormatValue(5.678, "KiB"):     "5.68 KiB",
		FormatValue(math.NaN(), "ms"): "—",
		FormatRatio(0.8333):           "0.83×",
		FormatRatio(27.84):            "27.8×",
		FormatRatio(123.4):            "123×",
		FormatRatio(math.NaN()):       "—",
		Thousands(-1234567):           "-1,234,567",
		Thousands(999):                "999",
		FormatMet(nil):                "",
		FormatMet(Bool(true)):         "yes",
		FormatMet(Bool(false)):        "**no**",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if AtMost(math.NaN(), 1) != nil || *AtMost(1, 1) != true || *AtLeast(0.79, 0.8) != false || *Below(1.1, 1.1) != false {
		t.Error("verdicts")
	}
}

func TestMarkdownHasATablePerSectionAndTheMachine(t *testing.T) {
	r := &Report{
		Title: "Signal benchmark", Date: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Command: "signalbench all",
		Machine: Machine{CPU: "Test CPU", Cores: 2, MemoryGiB: 24, Kernel: "Linux 6", Go: "go1.26", PostgreSQL: "15.18", Commit: "abc1234", Dirty: true},
		Targets: []Target{{Goal: "ingest ≥ 0.8 × COPY", Measured: "0.9×", Met: Bool(true)}},
		Sections: []Section{{
			Title: "Ingest", Method: "How.",
			Rows: []Row{
				{Figure: "Signal | ingest", Value: 9000, Unit: "msg/s", Reference: "raw COPY", RefValue: 10000, Target: "≥ 0.8×", Met: Bool(true)},
				{Figure: "time", Value: 2.5, Unit: "s"},
			},
			Notes:  []string{"A note."},
			Charts: []string{"2026-01-02-ingest.png"},
		}},
	}
	var b bytes.Buffer
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"# Signal benchmark", "- CPU: Test CPU, 2 cores", "- PostgreSQL: 15.18", "abc1234 with uncommitted changes",
		"| ingest ≥ 0.8 × COPY | 0.9× | yes |", "## Ingest", "How.",
		`| Signal \| ingest | 9,000 msg/s | raw COPY: 10,000 msg/s | 0.90× | ≥ 0.8× | yes |`,
		"| time | 2.50 s |  | — |  |  |", "- A note.", "![2026-01-02-ingest.png](2026-01-02-ingest.png)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestChartsArePNGs(t *testing.T) {
	dir := t.TempDir()
	bars := filepath.Join(dir, "bars.png")
	if err := BarChart(bars, "throughput", "messages/s", []Bar{{"Signal", 30000}, {"COPY", 40000}, {"seed", 900}}); err != nil {
		t.Fatal(err)
	}
	samples := make([]float64, 5000)
	for i := range samples {
		samples[i] = 0.5 + float64(i%1000)/10
	}
	cdf := filepath.Join(dir, "cdf.png")
	if err := CDFChart(cdf, "latency", []Series{{"a", samples}, {"b", samples[:10]}, {"empty", nil}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{bars, cdf} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 100 {
			t.Errorf("%s: not a usable PNG: %v", p, err)
		}
	}
	if err := CDFChart(filepath.Join(dir, "none.png"), "x", nil); err == nil {
		t.Error("a chart of no samples should fail")
	}
}

func TestLogTicksLabelOneTwoFive(t *testing.T) {
	var labels []string
	for _, tk := range (logTicks{}).Ticks(0.8, 120) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got := strings.Join(labels, " "); got != "1 2 5 10 20 50 100" {
		t.Errorf("labels %q", got)
	}
}
