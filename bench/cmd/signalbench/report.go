package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/signal-notify/signal/bench/report"
)

// reporter is what a scenario's report method adds its sections, targets
// and charts to.
type reporter struct {
	cfg    *config
	rep    *report.Report
	prefix string // of the chart files: the report's name
}

// chart draws a chart into the report's folder and attaches it to s; a
// chart that fails is logged and left out.
func (rp *reporter) chart(s *report.Section, name string, draw func(path string) error) {
	file := rp.prefix + "-" + name + ".png"
	if err := draw(filepath.Join(rp.cfg.out, file)); err != nil {
		logf("chart %s: %v", file, err)
		return
	}
	s.Charts = append(s.Charts, file)
}

// buildReport assembles the report: each selected scenario's sections and
// targets, in order, then the notes common to all.
func buildReport(cfg *config, e *env, prefix string, took time.Duration, m report.Machine, failures []string) *report.Report {
	m.Disk = diskOf(e.dir) + ", fsync on (durable cluster)"
	rp := &reporter{cfg: cfg, prefix: prefix, rep: &report.Report{
		Title:    "Signal benchmark " + cfg.date,
		Date:     time.Now(),
		Command:  "signalbench " + strings.Join(os.Args[1:], " "),
		Duration: took,
		Machine:  m,
	}}
	for _, r := range cfg.runs {
		r.report(rp)
	}
	rp.rep.Notes = append(rp.rep.Notes,
		"Everything runs on this one machine: the server, PostgreSQL, the in-process broker (in the harness) and the client processes share its cores, so client-side work is inside every latency figure.",
		"Latencies are wall-clock differences between processes on the same machine (CLOCK_REALTIME).")
	for _, f := range failures {
		rp.rep.Notes = append(rp.rep.Notes, "Failed: "+f)
	}
	return rp.rep
}

func joinMs(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, ", ")
}

// diskOf names the file system holding path, from /proc/mounts.
func diskOf(path string) string {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return "unknown storage"
	}
	defer f.Close()
	type mount struct{ dev, dir, fs string }
	var ms []mount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 {
			ms = append(ms, mount{fields[0], fields[1], fields[2]})
		}
	}
	sort.Slice(ms, func(i, j int) bool { return len(ms[i].dir) > len(ms[j].dir) })
	for _, m := range ms {
		if path == m.dir || strings.HasPrefix(path, strings.TrimSuffix(m.dir, "/")+"/") {
			return fmt.Sprintf("%s on %s", m.fs, m.dev)
		}
	}
	return "unknown storage"
}

// closedText is "none" or "12 (close code 3008: 12)".
func closedText(n int, codes map[int]int) string {
	if n == 0 {
		return "none"
	}
	keys := make([]int, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("close code %d: %d", k, codes[k])
	}
	return fmt.Sprintf("%d (%s)", n, strings.Join(parts, ", "))
}

func ratesText(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = report.Thousands(int64(math.Round(x)))
	}
	return strings.Join(parts, ", ")
}
