package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/signal-notify/signal/bench/report"
)

// Broadcasts and their delivery, shared by the fanout, slow and hostile
// scenarios.

// broadcastPhase is a series of broadcasts to every client.
type broadcastPhase struct {
	Name       string         `json:"name"`
	Broadcasts int            `json:"broadcasts"` // measured, warm-up excluded
	Receivers  int            `json:"receivers"`  // clients counted, per broadcast
	Expected   int            `json:"expected"`
	Received   int            `json:"received"`
	Lat        report.Latency `json:"latencyMs"`
	// LastMs is, per broadcast, when the last counted client had it.
	LastMs []float64 `json:"lastMs"`
	// P99s is, per broadcast, the p99 over the counted clients.
	P99s []float64 `json:"p99s"`
	// RoundP99s is the pooled p99 of each round merged in (slow scenario).
	RoundP99s []float64 `json:"roundP99s,omitempty"`
	// CPU time per measured broadcast (warm-up and pauses included, spread
	// over the measured ones) of the server and of all client processes.
	ServerCPUms  float64   `json:"serverCpuMs"`
	ClientsCPUms float64   `json:"clientsCpuMs"`
	HarnessCPUms float64   `json:"harnessCpuMs"`
	Samples      []float64 `json:"-"`
}

// mergePhase pools the samples of two runs of the same condition.
func mergePhase(a, b broadcastPhase, name string) broadcastPhase {
	if a.Broadcasts == 0 {
		b.Name = name
		b.RoundP99s = []float64{b.Lat.P99}
		return b
	}
	n := float64(a.Broadcasts + b.Broadcasts)
	m := broadcastPhase{Name: name, Broadcasts: a.Broadcasts + b.Broadcasts, Receivers: b.Receivers,
		Expected: a.Expected + b.Expected, Received: a.Received + b.Received,
		LastMs:       append(append([]float64(nil), a.LastMs...), b.LastMs...),
		P99s:         append(append([]float64(nil), a.P99s...), b.P99s...),
		RoundP99s:    append(append([]float64(nil), a.RoundP99s...), b.Lat.P99),
		ServerCPUms:  (a.ServerCPUms*float64(a.Broadcasts) + b.ServerCPUms*float64(b.Broadcasts)) / n,
		ClientsCPUms: (a.ClientsCPUms*float64(a.Broadcasts) + b.ClientsCPUms*float64(b.Broadcasts)) / n,
		HarnessCPUms: (a.HarnessCPUms*float64(a.Broadcasts) + b.HarnessCPUms*float64(b.Broadcasts)) / n,
		Samples:      append(append([]float64(nil), a.Samples...), b.Samples...)}
	m.Lat = report.Summarize(m.Samples)
	return m
}

const (
	fillFrames = 12
	fillBytes  = 32 << 10
)

// broadcaster posts broadcasts and collects their receptions.
type broadcaster struct {
	s    *server
	p    *pool
	k    int // measured broadcasts per phase
	next int
}

// phase sends one warm-up and k measured broadcasts, one after the other
// once the previous one was received; counted says which clients count.
func (b *broadcaster) phase(ctx context.Context, name string, counted func(idx int) bool, want int) (broadcastPhase, error) {
	ph := broadcastPhase{Name: name, Broadcasts: b.k, Receivers: want}
	srv0, cl0, h0 := cpuSeconds(b.s.pid()), b.p.cpuSeconds(), cpuSeconds(os.Getpid())
	for i := 0; i <= b.k; i++ {
		b.next++
		id := b.next
		body, _ := json.Marshal(map[string]any{"topic": topicBroadcast, "data": map[string]int{"id": id}})
		t0 := time.Now()
		if err := post(ctx, b.s.url()+"/socket/websocket/clients/broadcast", body); err != nil {
			return ph, err
		}
		recvs := b.p.waitBroadcast(ctx, id, want, counted, 30*time.Second)
		if i == 0 {
			_ = sleepCtx(ctx, 300*time.Millisecond)
			continue // warm-up
		}
		last := 0.0
		var one []float64
		for _, r := range recvs {
			if !counted(r.idx) {
				continue
			}
			ms := float64(r.r-t0.UnixNano()) / 1e6
			one = append(one, ms)
			last = max(last, ms)
		}
		ph.Samples = append(ph.Samples, one...)
		ph.LastMs = append(ph.LastMs, last)
		ph.P99s = append(ph.P99s, report.Summarize(one).P99)
		_ = sleepCtx(ctx, 300*time.Millisecond)
	}
	ph.ServerCPUms = (cpuSeconds(b.s.pid()) - srv0) * 1000 / float64(b.k)
	ph.ClientsCPUms = (b.p.cpuSeconds() - cl0) * 1000 / float64(b.k)
	ph.HarnessCPUms = (cpuSeconds(os.Getpid()) - h0) * 1000 / float64(b.k)
	ph.Expected = want * b.k
	ph.Received = len(ph.Samples)
	ph.Lat = report.Summarize(ph.Samples)
	logf("broadcast %s: %d of %d deliveries, p50 %.1f ms, p99 %.1f ms, max %.1f ms; CPU per broadcast: server %.0f ms, clients %.0f ms, harness %.0f ms",
		name, ph.Received, ph.Expected, ph.Lat.P50, ph.Lat.P99, ph.Lat.Max, ph.ServerCPUms, ph.ClientsCPUms, ph.HarnessCPUms)
	return ph, nil
}

// fill sends large frames to the slow-capable clients' room, so that the
// ones that stopped reading have full socket buffers and a queue.
func (b *broadcaster) fill(ctx context.Context) error {
	body, _ := json.Marshal(map[string]any{"topic": topicFill, "data": strings.Repeat("x", fillBytes)})
	u := b.s.url() + "/socket/websocket/clients/rooms/" + url.PathEscape(slowRoom) + "/send"
	for i := 0; i < fillFrames; i++ {
		if err := post(ctx, u, body); err != nil {
			return err
		}
		_ = sleepCtx(ctx, 20*time.Millisecond)
	}
	return sleepCtx(ctx, 2*time.Second)
}

func post(ctx context.Context, u string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		var msg bytes.Buffer
		_, _ = msg.ReadFrom(resp.Body)
		return fmt.Errorf("POST %s: %d %s", u, resp.StatusCode, msg.String())
	}
	return nil
}
