package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signal-notify/signal/bench/report"
)

// The hostile scenario (issue 9): clients that never read, each sent its
// own frames until its byte budget (websocket.queue_bytes) is passed,
// while other clients take broadcasts. It measures what the server holds
// for them (RSS) against hostile × queue_bytes, and the others' broadcast
// latency against a phase before the hostile clients came.

type hostileResult struct {
	Others     int `json:"others"`
	Hostile    int `json:"hostile"`
	Connected  int `json:"hostileConnected"`
	QueueBytes int `json:"queueBytes"`
	FrameBytes int `json:"frameBytes"`
	// Server RSS (KiB): with the hostile clients connected and idle, then
	// settled while they hold (nearly) their whole budget, and the peak
	// while they were filled and pushed past it.
	RSSBeforeKiB float64 `json:"rssBeforeKiB"`
	RSSHoldKiB   float64 `json:"rssHoldKiB"`
	RSSPeakKiB   float64 `json:"rssPeakKiB"`
	RSSAfterKiB  float64 `json:"rssAfterKiB"`
	// signal_websocket_queued_bytes while they hold, and at the peak.
	QueuedHold float64 `json:"queuedHold"`
	QueuedPeak float64 `json:"queuedPeak"`
	// RSS growth while holding / (hostile × queue_bytes).
	HoldRatio float64 `json:"holdRatio"`
	// Peak RSS growth / (hostile × queue_bytes): includes the garbage
	// collector's headroom over what is live.
	PeakRatio    float64        `json:"peakRatio"`
	FillRounds   int            `json:"fillRounds"`
	FillSends    int            `json:"fillSends"`
	FillSeconds  float64        `json:"fillSeconds"`
	Dropped      float64        `json:"dropped"`      // signal_websocket_slow_clients_dropped_total at the end
	DroppedEarly float64        `json:"droppedEarly"` // already while holding
	QueuedAfter  float64        `json:"queuedAfter"`
	Baseline     broadcastPhase `json:"baseline"`
	WithHostile  broadcastPhase `json:"withHostile"`
	Ratio        float64        `json:"ratio"` // others' p99 with / without
	OthersClosed int            `json:"othersClosed"`
}

func runHostile(ctx context.Context, e *env) (*hostileResult, error) {
	cfg := e.cfg
	broker, err := startBroker(e, topic)
	if err != nil {
		return nil, err
	}
	dbURL, err := e.database(ctx, "bench_hostile")
	if err != nil {
		return nil, err
	}
	s, err := e.serve(ctx, serveOpts{name: "hostile", dbURL: dbURL, broker: broker, extra: []string{
		"APP_ENV_KAFKA_GROUP_ID=bench-hostile", "SIGNAL_WEBSOCKET_QUEUE_BYTES=" + strconv.Itoa(cfg.queueBytes)}})
	if err != nil {
		return nil, err
	}
	defer s.stop()
	r := &hostileResult{Others: cfg.hostileOthers, Hostile: cfg.hostile, QueueBytes: cfg.queueBytes, FrameBytes: hostileFrame}

	others, st, err := startPool(ctx, e, poolOpts{name: "others", url: s.wsURL(), n: cfg.hostileOthers, perProc: cfg.perProc, minProcs: 2, prefix: "o"})
	if err != nil {
		return nil, err
	}
	defer others.close()
	if st.OK == 0 {
		return nil, fmt.Errorf("hostile: no client connected: %s", st.Err)
	}
	b := &broadcaster{s: s, p: others, k: cfg.broadcasts}
	all := func(int) bool { return true }
	if r.Baseline, err = b.phase(ctx, "without hostile clients", all, st.OK); err != nil {
		return r, err
	}

	hostile, hst, err := startPool(ctx, e, poolOpts{name: "hostile", url: s.wsURL(), n: cfg.hostile, perProc: cfg.perProc, prefix: "h", noRead: true, srcBase: 20})
	if err != nil {
		return r, err
	}
	defer hostile.close()
	r.Connected = hst.OK
	if hst.OK == 0 {
		return r, fmt.Errorf("hostile: no hostile client connected: %s", hst.Err)
	}
	if r.RSSBeforeKiB, err = s.settledRSS(ctx, 3*time.Second); err != nil {
		return r, err
	}

	// Fill: rounds of one frame to each hostile client's own room (frames
	// of their own, as notifications or replies are), until they hold
	// (nearly) their whole budget.
	f := newFiller(s, cfg.hostile, 16)
	peak := newPeakSampler(s)
	start := time.Now()
	for r.FillRounds < 400 {
		if err := f.round(ctx); err != nil {
			return r, err
		}
		r.FillRounds++
		m := scrape(s)
		alive := float64(cfg.hostile) - m["signal_websocket_slow_clients_dropped_total"]
		if alive <= 0 || m["signal_websocket_queued_bytes"]/alive >= float64(cfg.queueBytes-3*(hostileFrame+256)) {
			break
		}
	}
	m := scrape(s)
	r.DroppedEarly = m["signal_websocket_slow_clients_dropped_total"]
	if r.RSSHoldKiB, err = s.settledRSS(ctx, 3*time.Second); err != nil {
		return r, err
	}
	r.QueuedHold = scrape(s)["signal_websocket_queued_bytes"]
	logf("hostile: %d clients hold %.0f MiB queued (%d dropped already); RSS %.0f → %.0f MiB",
		r.Connected, r.QueuedHold/(1<<20), int(r.DroppedEarly), r.RSSBeforeKiB/1024, r.RSSHoldKiB/1024)

	// The others take broadcasts while the hostile clients hold their budgets.
	if r.WithHostile, err = b.phase(ctx, "hostile clients holding their budget", all, st.OK); err != nil {
		return r, err
	}

	// Past the budget: every hostile client is dropped.
	for i := 0; i < 100; i++ {
		if scrape(s)["signal_websocket_slow_clients_dropped_total"] >= float64(r.Connected) {
			break
		}
		if err := f.round(ctx); err != nil {
			return r, err
		}
		r.FillRounds++
	}
	r.FillSeconds = time.Since(start).Seconds()
	r.FillSends = f.sends
	r.RSSPeakKiB, r.QueuedPeak = peak.stop()
	_ = sleepCtx(ctx, 2*time.Second)
	m = scrape(s)
	r.Dropped, r.QueuedAfter = m["signal_websocket_slow_clients_dropped_total"], m["signal_websocket_queued_bytes"]
	if r.RSSAfterKiB, err = s.settledRSS(ctx, 3*time.Second); err != nil {
		return r, err
	}
	budgetKiB := float64(r.Connected) * float64(cfg.queueBytes) / 1024
	r.HoldRatio = report.Ratio(r.RSSHoldKiB-r.RSSBeforeKiB, budgetKiB)
	r.PeakRatio = report.Ratio(r.RSSPeakKiB-r.RSSBeforeKiB, budgetKiB)
	r.Ratio = report.Ratio(r.WithHostile.Lat.P99, r.Baseline.Lat.P99)
	r.OthersClosed, _ = others.closedByServer()
	logf("hostile: RSS growth holding %.2f× and at the peak %.2f× of %d × queue_bytes; %d of %d dropped; others' p99 %.1f → %.1f ms (%.2f×)",
		r.HoldRatio, r.PeakRatio, r.Connected, int(r.Dropped), r.Connected, r.Baseline.Lat.P99, r.WithHostile.Lat.P99, r.Ratio)
	return r, nil
}

// hostileFrame is the data size of each frame sent to a hostile client.
const hostileFrame = 64 << 10

// filler posts frames to the hostile clients' rooms, conc at a time.
type filler struct {
	s     *server
	n     int
	conc  int
	body  []byte
	cl    *http.Client
	sends int
}

func newFiller(s *server, n, conc int) *filler {
	body, _ := json.Marshal(map[string]any{"topic": "bench/hostile", "data": strings.Repeat("h", hostileFrame)})
	return &filler{s: s, n: n, conc: conc, body: body,
		cl: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conc}}}
}

// round sends one frame to each hostile client.
func (f *filler) round(ctx context.Context) error {
	next := make(chan int)
	errs := make(chan error, f.conc)
	var wg sync.WaitGroup
	for w := 0; w < f.conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				u := f.s.url() + "/socket/websocket/clients/rooms/signal%2Fnotification%2Fh" + strconv.Itoa(i) + "/send"
				req, _ := http.NewRequestWithContext(ctx, "POST", u, bytes.NewReader(f.body))
				req.Header.Set("Authorization", "Bearer "+apiKey)
				resp, err := f.cl.Do(req)
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("POST %s: %d", u, resp.StatusCode)
					return
				}
			}
		}()
	}
	for i := 0; i < f.n; i++ {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			return err
		}
	}
	close(next)
	wg.Wait()
	f.sends += f.n
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// peakSampler reads the server's RSS and queued bytes every 100 ms.
type peakSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	rss  float64
	q    float64
}

func newPeakSampler(s *server) *peakSampler {
	p := &peakSampler{done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := s.rssKiB(); err == nil {
				p.rss = max(p.rss, v)
			}
			p.q = max(p.q, scrape(s)["signal_websocket_queued_bytes"])
			select {
			case <-p.done:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *peakSampler) stop() (rssKiB, queued float64) {
	close(p.done)
	p.wg.Wait()
	return p.rss, p.q
}

// scrape reads the server's un-labelled metrics.
func scrape(s *server) map[string]float64 {
	out := map[string]float64{}
	code, body := httpGet(s.url()+"/metrics", 5*time.Second)
	if code != 200 {
		return out
	}
	for _, line := range strings.Split(string(body), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			out[name] = v
		}
	}
	return out
}
