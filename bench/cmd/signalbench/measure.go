package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/signal-notify/signal/bench/report"
)

// Latency at a steady rate, shared by the e2e and cluster scenarios.

// latencyRun is produce → WebSocket receive at one steady rate.
type latencyRun struct {
	Name     string         `json:"name"`
	Rate     float64        `json:"rate"`
	Sent     int            `json:"sent"`     // messages produced, warm-up included
	Expected int            `json:"expected"` // frames expected after the warm-up
	Received int            `json:"received"` // of those, frames received
	Lat      report.Latency `json:"latencyMs"`
	// Cores is the average CPU use during the run, by process group.
	Cores   map[string]float64 `json:"cores,omitempty"`
	Samples []float64          `json:"-"`
}

// recipientsOf gives message i two distinct recipients among prefix0…prefix(n-1).
func recipientsOf(prefix string, n int) func(i int) [2]string {
	return func(i int) [2]string {
		a := i % n
		b := (a + 1 + (i/n)%(n-1)) % n
		return [2]string{prefix + strconv.Itoa(a), prefix + strconv.Itoa(b)}
	}
}

// measureRate produces at rate for warm-up + duration and collects the
// latencies of the frames sent after the warm-up, from each pool.
func measureRate(ctx context.Context, e *env, prod *pacedProducer, rate float64, recipients func(int) [2]string, pools ...*pool) ([]latencyRun, error) {
	e.checkpoint(ctx)
	for _, p := range pools {
		p.takeNotif()
	}
	start := time.Now()
	cutoff := start.Add(e.cfg.warmup).UnixNano()
	sent, measured, err := prod.run(ctx, rate, e.cfg.warmup+e.cfg.duration, cutoff, recipients)
	if err != nil {
		return nil, fmt.Errorf("produce at %.0f/s: %w", rate, err)
	}
	// Wait for the backlog to drain: every pool has every frame, or 20 s.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		all := true
		for _, p := range pools {
			if p.notifCount() < 2*sent {
				all = false
			}
		}
		if all {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond)
	var out []latencyRun
	for _, p := range pools {
		run := latencyRun{Name: p.o.name, Rate: rate, Sent: sent, Expected: 2 * measured}
		for _, s := range p.takeNotif() {
			if s.s < cutoff {
				continue
			}
			run.Samples = append(run.Samples, float64(s.r-s.s)/1e6)
		}
		run.Received = len(run.Samples)
		run.Lat = report.Summarize(run.Samples)
		logf("%s at %.0f msg/s: %d of %d frames, p50 %.2f ms, p99 %.2f ms, max %.1f ms",
			p.o.name, rate, run.Received, run.Expected, run.Lat.P50, run.Lat.P99, run.Lat.Max)
		out = append(out, run)
	}
	return out, nil
}

// coresText prints a cpuMeter result, largest first.
func coresText(c map[string]float64) string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return c[names[i]] > c[names[j]] })
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %.2f", n, c[n])
	}
	return strings.Join(parts, ", ")
}
