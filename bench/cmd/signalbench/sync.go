package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/signal-notify/signal/bench/report"
	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/device"
	"github.com/signal-notify/signal/internal/launch"
	"github.com/signal-notify/signal/internal/pgcluster"
	"github.com/signal-notify/signal/internal/store"
)

// The sync scenario (issue 21): every device shows what the database holds
// through a day of faults. Three instances, thousands of devices that drop
// their connection now and then and resume on a random instance, steady
// traffic with organizer events and state changes, and on a schedule a
// SIGKILL, a rolling restart and a PostgreSQL restart. At the end every
// device is compared with the database: changes missed and count drift
// must be 0. The previous build runs the same day with its own client
// protocol (resume by notification id).
func init() {
	register(&scenario{name: "sync", order: 120,
		summary: "3 instances, thousands of reconnecting devices, traffic with org events and state changes, a SIGKILL, a rolling restart and a PostgreSQL restart: changes missed and count drift per device",
		setup: func(fs *flag.FlagSet) run {
			x := &syncRun{}
			fs.IntVar(&x.o.devices, "sync-devices", 3000, "sync: devices (two per recipient)")
			fs.Float64Var(&x.o.rate, "sync-rate", 2000, "sync: messages per second (two recipients each, one in 200 to an organizer)")
			fs.IntVar(&x.o.members, "sync-members", 500, "sync: recipients in the organizer of org events")
			fs.DurationVar(&x.o.phase, "sync-phase", 20*time.Second, "sync: time before, between and after the faults")
			fs.Float64Var(&x.o.dropPct, "sync-drop", 5, "sync: percent of devices that drop their connection every 10 s")
			fs.StringVar(&x.o.baseline, "sync-baseline-bin", "", "sync: a previous build, run the same day with its own protocol (resume by notification id)")
			fs.Func("sync-faults", "sync: faults in order, of kill, rolling, pg-restart (default all three)", func(v string) error {
				x.o.faults = nil
				for f := range strings.SplitSeq(v, ",") {
					if f = strings.TrimSpace(f); f != "" {
						x.o.faults = append(x.o.faults, f)
					}
				}
				return nil
			})
			return x
		}})
}

// syncOptions are the scenario's flags.
type syncOptions struct {
	devices, members int
	rate, dropPct    float64
	phase            time.Duration
	baseline         string
	faults           []string // in order: kill, rolling, pg-restart (and, for soak, more)
	name             string   // "sync" when empty; the soak's is "soak"
	// The soak's additions (zero: as the sync scenario).
	instances  int           // 3 when 0
	replica    bool          // a cluster of its own with a synchronous replica (the failover fault)
	async      bool          // the replica is asynchronous (what a failover may lose, measured)
	lag        time.Duration // async: the replica stops receiving WAL this long before the failover
	brokerDisk bool          // the broker keeps its log on disk (the broker-restart fault)
	burst      float64       // rate multiplier of the burst fault
	hostile    int           // connections of the hostile fault
	inboxRate  float64       // inbox reads per second
	rows       bool          // count rows lost and duplicated at the end
	orgEvery   int           // one message in this many to the organizer (200 when 0)
}

type syncRun struct {
	o   syncOptions
	res *syncResult
	ref *syncResult // the baseline build, same day
}

func (x *syncRun) check() error {
	if x.o.devices < 2 || x.o.rate <= 0 || x.o.phase < 5*time.Second {
		return fmt.Errorf("sync: -sync-devices ≥ 2, -sync-rate > 0, -sync-phase ≥ 5s")
	}
	if x.o.faults == nil {
		x.o.faults = []string{"kill", "rolling", "pg-restart"}
	}
	return nil
}

func (x *syncRun) measure(ctx context.Context, e *env) error {
	var err error
	if x.o.baseline != "" {
		if x.ref, err = runSync(ctx, e, x.o, x.o.baseline, true); err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
	}
	x.res, err = runSync(ctx, e, x.o, e.bin, false)
	return err
}

func (x *syncRun) results() map[string]any {
	return map[string]any{"sync": x.res, "syncBaseline": x.ref}
}

func (x *syncRun) report(rp *reporter) {
	reportSync(rp, "Every device in sync", "sync", x.res, x.ref, x.o,
		"every device in sync through a SIGKILL, a rolling restart and a PostgreSQL restart: 0 changes missed, 0 count drift")
}

// syncResult is one run of the scenario.
type syncResult struct {
	Build          string  `json:"build"`
	Legacy         bool    `json:"legacy"`
	Devices        int     `json:"devices"`
	Rate           float64 `json:"rate"`
	Messages       int     `json:"messages"`
	StateChanges   int     `json:"stateChanges"`
	Sessions       int     `json:"sessions"`
	ChangesApplied int     `json:"changesApplied"`
	Resets         int     `json:"resets"`
	Gaps           int     `json:"gaps"`
	// DevicesOff: devices whose view differs from the database at the end;
	// Missed: notifications or states they show wrong; Drift: devices
	// whose counts differ.
	DevicesOff  int      `json:"devicesOff"`
	Missed      int      `json:"missed"`
	Drift       int      `json:"drift"`
	Examples    []string `json:"examples,omitempty"`
	ConvergeSec float64  `json:"convergeSeconds"`
	// Latency of created frames, by phase: calm, then each fault's.
	Phases []syncPhase `json:"phases"`
	// PeakRSSMiB of each instance, and PostgreSQL's CPU over the run.
	PeakRSSMiB    []float64 `json:"peakRssMiB"`
	InstanceCores []float64 `json:"instanceCores"`
	PGCores       float64   `json:"pgCores"`
	Load          string    `json:"load"`
	// StartSec: from the devices' start to every one of them live.
	StartSec float64 `json:"startSeconds"`
	// Each fault: the time until every device had been live again after
	// it (from its start), and PostgreSQL's cores meanwhile.
	Faults []syncFault `json:"faults,omitempty"`
	// The soak's: rows, inbox reads, hostile connections.
	RowsExpected   int          `json:"rowsExpected,omitempty"`
	RowsLost       int          `json:"rowsLost"`
	RowsDuplicated int          `json:"rowsDuplicated"`
	InboxReads     *inboxReads  `json:"inboxReads,omitempty"`
	Hostile        *soakHostile `json:"hostile,omitempty"`
}

type syncFault struct {
	Name    string  `json:"name"`
	LiveSec float64 `json:"liveSeconds"`
	PGCores float64 `json:"pgCores"`
}

type syncPhase struct {
	Name    string         `json:"name"`
	Latency report.Latency `json:"latencyMs"`
	// RecoverSec: from the fault to the first second whose p99 is back
	// under twice the calm p99 (0 when it never left it).
	RecoverSec float64 `json:"recoverSeconds,omitempty"`
}

// syncWorld is one run's instances, devices and traffic.
type syncWorld struct {
	e      *env
	o      syncOptions
	bin    string
	legacy bool
	name   string // of the run: the group is bench-<name>
	broker string
	dbURL  string

	mu        sync.Mutex
	instances []*server

	devices    []*device.SyncClient
	recipients []string
	members    []string // of org-sync
	samples    []latencySample
	sampleMu   sync.Mutex
	peakRSS    []float64

	soak soakState // the soak's faults, reads and row count
	// CPU seconds last read of each process (PostgreSQL's, the
	// instances'), so that ended ones still count; under mu.
	cpuSeen map[int]float64
	slotOf  map[int]int // instance pid → its slot
	pgSeen  map[int]float64
}

type latencySample struct {
	at time.Time
	ms float64
}

// runSync runs the scenario once, with bin (legacy: the protocol before
// the sync stream).
func runSync(ctx context.Context, e *env, o syncOptions, bin string, legacy bool) (*syncResult, error) {
	w := &syncWorld{e: e, o: o, bin: bin, legacy: legacy, name: o.name}
	if w.name == "" {
		w.name = "sync"
	}
	if legacy {
		w.name += "-baseline"
	}
	name := w.name
	if err := w.setup(ctx, name); err != nil {
		return nil, err
	}
	for i := range w.instanceCount() {
		if err := w.startInstance(ctx, i, name); err != nil {
			return nil, err
		}
	}
	defer w.stopAll()
	res := &syncResult{Build: bin, Legacy: legacy, Devices: o.devices, Rate: o.rate}
	for i := range o.devices / 2 {
		w.recipients = append(w.recipients, "d"+strconv.Itoa(i))
	}
	w.members = w.recipients[:min(o.members, len(w.recipients))]
	if status, body := httpPutJSON(w.pick()+"/memberships/org/org-sync", apiKey, map[string]any{"recipientIds": w.members}); status != 200 {
		return nil, fmt.Errorf("memberships: %d %s", status, body)
	}
	for i := range o.devices {
		r := w.recipients[i%len(w.recipients)]
		tok, err := auth.Sign(jwtSecret, r, nil, 24*time.Hour)
		if err != nil {
			return nil, err
		}
		d := device.New(r, tok, w.pick)
		d.Legacy = legacy
		d.Observe = w.observe
		w.devices = append(w.devices, d)
	}
	pgCPU0 := w.pgCPU()
	start := time.Now()
	stopDevices := w.runDevices(ctx)
	logf("%s: %d devices on %d instances", name, len(w.devices), w.instanceCount())
	// The day starts once every device is live (connected, its inbox
	// loaded, its stream synced): a fault must not meet devices still
	// starting.
	res.StartSec = w.untilLive(ctx, start, 5*time.Minute).Seconds()
	logf("%s: every device live %.1f s after the start", name, res.StartSec)
	start = time.Now()
	stopTraffic := w.traffic(ctx)
	stopReads := w.inboxReads(ctx)
	phases := []struct {
		name string
		at   time.Time
	}{{"calm", start}}
	sleepCtx(ctx, o.phase)
	for _, f := range o.faults {
		phases = append(phases, struct {
			name string
			at   time.Time
		}{f, time.Now()})
		logf("%s: %s", name, f)
		at, cpu0 := time.Now(), w.pgCPU()
		if err := w.fault(ctx, f, name); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if disconnects(f) { // burst and hostile leave every device connected
			live := w.untilLive(ctx, at, 2*time.Minute)
			res.Faults = append(res.Faults, syncFault{Name: f, LiveSec: live.Seconds(),
				PGCores: (w.pgCPU() - cpu0) / time.Since(at).Seconds()})
			logf("%s: %s: every device live again %.1f s after it began", name, f, live.Seconds())
		}
		sleepCtx(ctx, o.phase)
	}
	res.InboxReads = stopReads()
	res.Messages, res.StateChanges = stopTraffic()
	end := time.Now()
	logf("%s: %d messages, %d state changes; waiting for every device to catch up", name, res.Messages, res.StateChanges)
	converged := time.Now()
	if err := w.converge(ctx); err != nil {
		logf("%s: %v", name, err)
	}
	res.ConvergeSec = time.Since(converged).Seconds()
	stopDevices()
	res.PGCores = (w.pgCPU() - pgCPU0) / time.Since(start).Seconds()
	res.PeakRSSMiB = w.peakRSS
	res.InstanceCores = w.instanceCores(time.Since(start))
	res.Load = loadAvg()
	if legacy { // the devices are read with this build's store: its schema
		w.stopAll()
		cmd := launch.CommandContext(ctx, e.bin, "migrate", "up", "--database-url", w.dbURL)
		cmd.Env = append(os.Environ(), "SIGNAL_CONFIG=", "NO_COLOR=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return res, fmt.Errorf("migrate the baseline's database for the comparison: %w\n%s", err, out)
		}
	}
	if err := w.verify(ctx, res); err != nil {
		return res, err
	}
	if o.rows {
		if err := w.countRows(ctx, res); err != nil {
			return res, err
		}
	}
	res.Hostile = w.soak.hostileResult
	res.Phases = w.phases(phases, end)
	logf("%s: %d devices off, %d changes missed, %d count drift, %d gaps, %d resets; converged in %.1fs",
		name, res.DevicesOff, res.Missed, res.Drift, res.Gaps, res.Resets, res.ConvergeSec)
	return res, nil
}

// startInstance starts (or restarts) instance i.
func (w *syncWorld) startInstance(ctx context.Context, i int, name string) error {
	s, err := w.e.serve(ctx, serveOpts{name: fmt.Sprintf("%s-%d", name, i), bin: w.bin, dbURL: w.dbURL, broker: w.broker,
		extra: []string{"APP_ENV_KAFKA_GROUP_ID=bench-" + name, "APP_ENV_KAFKA_CLIENT_ID=" + fmt.Sprintf("%s-%d", name, i),
			"SIGNAL_CLUSTER_HEARTBEAT=1s", "SIGNAL_WEBSOCKET_MAX_CONNECTIONS_PER_SUBJECT=0", w.pingEnv()}})
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.instances) <= i {
		w.instances = append(w.instances, nil)
		w.peakRSS = append(w.peakRSS, 0)
	}
	w.instances[i] = s
	return nil
}

// pick is a random running instance's base URL.
func (w *syncWorld) pick() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var up []*server
	for _, s := range w.instances {
		if s != nil {
			up = append(up, s)
		}
	}
	if len(up) == 0 {
		return "http://127.0.0.1:1"
	}
	return up[rand.IntN(len(up))].url()
}

func (w *syncWorld) stopAll() {
	w.mu.Lock()
	list := append([]*server(nil), w.instances...)
	w.mu.Unlock()
	for _, s := range list {
		if s != nil {
			s.stop()
		}
	}
}

// observe records the delivery latency of created frames (data.sentNs).
func (w *syncWorld) observe(topic string, data []byte) {
	if topic != "observation/signal/notification/created" {
		return
	}
	var d struct {
		Data struct {
			SentNs int64 `json:"sentNs"`
		} `json:"data"`
	}
	if json.Unmarshal(data, &d) != nil || d.Data.SentNs == 0 {
		return
	}
	now := time.Now()
	w.sampleMu.Lock()
	w.samples = append(w.samples, latencySample{at: now, ms: float64(now.UnixNano()-d.Data.SentNs) / 1e6})
	w.sampleMu.Unlock()
}

// runDevices keeps every device connected; each session lasts a random
// time whose mean drops dropPct % of the devices every 10 s.
func (w *syncWorld) runDevices(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	mean := time.Hour // -sync-drop 0: devices stay until the server closes them
	if w.o.dropPct > 0 {
		mean = 10 * time.Second * time.Duration(100/w.o.dropPct)
	}
	var wg sync.WaitGroup
	for _, d := range w.devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				life := time.Duration(rand.ExpFloat64() * float64(mean))
				if err := d.Session(ctx, max(life, 500*time.Millisecond), 10*time.Minute); err != nil {
					sleepCtx(ctx, time.Duration(50+rand.IntN(200))*time.Millisecond)
				}
			}
		}()
	}
	// Peak RSS of the instances, every second.
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.mu.Lock()
				for i, s := range w.instances {
					if s != nil {
						if kib, err := s.rssKiB(); err == nil {
							w.peakRSS[i] = max(w.peakRSS[i], kib/1024)
						}
						w.readCPU(s.pid(), i)
					}
				}
				w.mu.Unlock()
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// traffic produces rate messages per second (one in 200 to the organizer)
// and makes rate/20 state changes per second through REST, until stop.
func (w *syncWorld) traffic(ctx context.Context) (stop func() (messages, changes int)) {
	ctx, cancel := context.WithCancel(ctx)
	var produced, changed atomic.Int64
	var wg sync.WaitGroup
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.broker), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(2*time.Millisecond))
	if err != nil {
		panic(err)
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		next := time.Now()
		for i := 0; ctx.Err() == nil; i++ {
			var value []byte
			var key string
			var rcpts []string
			if i%w.orgEvery() == w.orgEvery()-1 {
				value = orgMessage(i, "org-sync", time.Now().UnixNano())
				key, rcpts = "t-"+strconv.Itoa(i), w.members
			} else {
				a, b := w.recipients[rand.IntN(len(w.recipients))], w.recipients[rand.IntN(len(w.recipients))]
				value = message(i, [2]string{a, b}, time.Now().UnixNano())
				key, rcpts = "p-"+strconv.Itoa(i), []string{a, b}
			}
			cl.Produce(ctx, &kgo.Record{Key: []byte(organizer(i)), Value: value}, func(_ *kgo.Record, err error) {
				if err == nil {
					produced.Add(1)
				}
				w.sent(key, rcpts, err)
			})
			next = next.Add(time.Duration(float64(time.Second) / (w.o.rate * w.rateFactor())))
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Duration(float64(time.Second) / max(w.o.rate/20, 1)))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if w.stateChange() {
					changed.Add(1)
				}
			}
		}
	}()
	return func() (int, int) {
		cancel()
		wg.Wait()
		cl.Flush(context.Background())
		cl.Close()
		return int(produced.Load()), int(changed.Load())
	}
}

// stateChange marks a few of a device's notifications (read, unread,
// archive, delete, seen) or all of them read, as its app would.
func (w *syncWorld) stateChange() bool {
	d := w.devices[rand.IntN(len(w.devices))]
	var ids []string
	for id := range d.Shown() {
		ids = append(ids, id)
		if len(ids) == 2 {
			break
		}
	}
	path, body := "/notifications/read-all", any(nil)
	if len(ids) > 0 && rand.IntN(10) > 0 {
		path = "/notifications/" + []string{"read", "unread", "archive", "unarchive", "delete", "seen"}[rand.IntN(6)]
		body = map[string]any{"ids": ids}
	}
	status, _ := httpPostJSON(w.pick()+path, d.Token, body)
	return status == http.StatusOK
}

// fault carries out one fault of the schedule.
func (w *syncWorld) fault(ctx context.Context, f, name string) error {
	switch f {
	case "kill": // SIGKILL an instance, start it again 3 s later
		w.mu.Lock()
		s := w.instances[1]
		w.instances[1] = nil
		w.mu.Unlock()
		s.proc.Kill()
		sleepCtx(ctx, 3*time.Second)
		return w.startInstance(ctx, 1, name)
	case "rolling": // every instance in turn: SIGTERM, start again, ready
		for i := range w.instanceCount() {
			w.mu.Lock()
			s := w.instances[i]
			w.instances[i] = nil
			w.mu.Unlock()
			s.stop()
			if err := w.startInstance(ctx, i, name); err != nil {
				return err
			}
		}
		return nil
	case "pg-restart":
		if w.soak.primary != nil {
			return w.soak.primary.Restart(ctx, pgcluster.Options{Durable: true})
		}
		return w.e.pg.Restart(ctx, pgcluster.Options{Durable: true})
	}
	return w.soakFault(ctx, f)
}

// converge waits until every device has caught up with its stream (for a
// legacy build, which has no positions: until the topic is consumed and
// a little more, for the last reconnections).
func (w *syncWorld) converge(ctx context.Context) error {
	adm, closeAdm, err := newAdmin(w.broker)
	if err != nil {
		return err
	}
	defer closeAdm()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if lag, err := groupLag(ctx, adm, "bench-"+w.name); err == nil && lag == 0 {
			break
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
	if w.legacy {
		sleepCtx(ctx, 15*time.Second)
		return nil
	}
	st, err := store.Open(ctx, w.dbURL, 4)
	if err != nil {
		return err
	}
	defer st.Close()
	for time.Now().Before(deadline) {
		heads, err := st.PeekHeads(ctx, w.recipients)
		if err == nil {
			behind := 0
			for _, d := range w.devices {
				if !d.Settled(heads[d.Recipient]) {
					behind++
				}
			}
			if behind == 0 {
				return nil
			}
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
	return fmt.Errorf("devices still behind their streams after 3 minutes")
}

// verify compares every device with the database.
func (w *syncWorld) verify(ctx context.Context, res *syncResult) error {
	st, err := store.Open(ctx, w.dbURL, 4)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, d := range w.devices {
		s := d.Stats()
		res.Sessions += s.Sessions
		res.ChangesApplied += s.Changes
		res.Resets += s.Resets
		res.Gaps += s.Gaps
		diff, err := d.Verify(ctx, st)
		if err != nil {
			return err
		}
		if diff == "" {
			continue
		}
		res.DevicesOff++
		res.Missed += strings.Count(diff, "missing ") + strings.Count(diff, "shown as ") + strings.Count(diff, "which is not in the inbox")
		if strings.Contains(diff, "counts ") {
			res.Drift++
		}
		if len(res.Examples) < 3 {
			res.Examples = append(res.Examples, d.Recipient+": "+diff)
		}
	}
	return nil
}

// phases summarises latencies: calm, then each fault's window (the fault
// until the next one), and how long each took to recover.
func (w *syncWorld) phases(starts []struct {
	name string
	at   time.Time
}, end time.Time) []syncPhase {
	w.sampleMu.Lock()
	samples := w.samples
	w.sampleMu.Unlock()
	var out []syncPhase
	var calmP99 float64
	for i, p := range starts {
		until := end
		if i+1 < len(starts) {
			until = starts[i+1].at
		}
		from := p.at
		if i == 0 {
			from = p.at.Add(5 * time.Second) // warm-up
		}
		var ms []float64
		perSec := map[int][]float64{}
		for _, s := range samples {
			if !s.at.Before(from) && s.at.Before(until) {
				ms = append(ms, s.ms)
				sec := int(s.at.Sub(p.at) / time.Second)
				perSec[sec] = append(perSec[sec], s.ms)
			}
		}
		ph := syncPhase{Name: p.name}
		if len(ms) > 0 { // no created frame in the window: zeros, not NaN (JSON)
			ph.Latency = report.Summarize(ms)
		}
		if i == 0 {
			calmP99 = ph.Latency.P99
		} else {
			last := -1
			for sec, v := range perSec {
				if report.Summarize(v).P99 > 2*calmP99 && sec > last {
					last = sec
				}
			}
			ph.RecoverSec = float64(last + 1)
		}
		out = append(out, ph)
	}
	return out
}

// reportSync writes the section of a sync or soak run.
func reportSync(rp *reporter, title, key string, r, ref *syncResult, o syncOptions, goal string) {
	if r == nil {
		return
	}
	s := report.Section{
		Title: title,
		Method: fmt.Sprintf(`Three `+"`signalctl serve`"+` processes on one durable PostgreSQL and the in-process broker; %s devices
(internal/device, the protocol's reference client: it keeps a cursor, applies changes by position, resumes
with ?since=, reloads on reset) for %s recipients, each session lasting a random time so that %.0f %% of them drop
and resume on a random instance every 10 s. %s msg/s (two recipients each; one in 200 to an organizer of %d
members) and a state change per 20 messages through REST (read, unread, archive, delete, seen, read-all). Faults,
%s apart: %s. At the end every device is compared with the database: every notification it shows and its
states, its counts, its cursor. The previous build, when given, runs the same schedule with the client of its
own protocol (resume by notification id; no positions, no counts).`,
			report.Thousands(int64(r.Devices)), report.Thousands(int64(r.Devices/2)), o.dropPct, report.Thousands(int64(r.Rate)), o.members,
			o.phase, strings.Join(o.faults, ", ")),
	}
	row := func(fig string, v float64, unit string, refV func(*syncResult) float64, target string, met *bool) {
		rw := report.Row{Figure: fig, Value: v, Unit: unit, Target: target, Met: met}
		if ref != nil {
			rw.Reference, rw.RefValue = "previous build", refV(ref)
		}
		s.Rows = append(s.Rows, rw)
	}
	row("devices differing from the database", float64(r.DevicesOff), "", func(x *syncResult) float64 { return float64(x.DevicesOff) }, "0", report.Bool(r.DevicesOff == 0))
	row("changes missed (notifications or states shown wrong)", float64(r.Missed), "", func(x *syncResult) float64 { return float64(x.Missed) }, "0", report.Bool(r.Missed == 0))
	row("devices with count drift", float64(r.Drift), "", func(x *syncResult) float64 { return float64(x.Drift) }, "0", report.Bool(r.Drift == 0))
	row("skipped positions seen by devices", float64(r.Gaps), "", func(x *syncResult) float64 { return float64(x.Gaps) }, "0", report.Bool(r.Gaps == 0))
	for i, p := range r.Phases {
		p := p
		refP := func(x *syncResult) float64 {
			if i < len(x.Phases) {
				return x.Phases[i].Latency.P99
			}
			return 0
		}
		row("e2e p99, "+p.Name, p.Latency.P99, "ms", refP, "", nil)
	}
	row("time for every device to be live at the start (connected, inbox loaded, synced)", r.StartSec, "s", func(x *syncResult) float64 { return x.StartSec }, "", nil)
	for i, f := range r.Faults {
		refF := func(get func(syncFault) float64) func(*syncResult) float64 {
			return func(x *syncResult) float64 {
				if i < len(x.Faults) {
					return get(x.Faults[i])
				}
				return 0
			}
		}
		row("every device live again after "+f.Name+" (from its start)", f.LiveSec, "s", refF(func(f syncFault) float64 { return f.LiveSec }), "", nil)
		row("PostgreSQL cores during "+f.Name+" until every device was live", f.PGCores, "", refF(func(f syncFault) float64 { return f.PGCores }), "", nil)
	}
	row("time for every device to catch up after the traffic stopped", r.ConvergeSec, "s", func(x *syncResult) float64 { return x.ConvergeSec }, "", nil)
	var notes []string
	notes = append(notes, fmt.Sprintf("Messages %s, state changes %s, sessions %s, changes applied %s, resets %d. PostgreSQL used %.2f cores on average; peak RSS per instance %v MiB. Load average at the end: %s.",
		report.Thousands(int64(r.Messages)), report.Thousands(int64(r.StateChanges)), report.Thousands(int64(r.Sessions)), report.Thousands(int64(r.ChangesApplied)),
		r.Resets, r.PGCores, roundAll(r.PeakRSSMiB), r.Load))
	for _, p := range r.Phases {
		if p.Name != "calm" {
			notes = append(notes, fmt.Sprintf("%s: p50 %s, p99 %s, back under twice the calm p99 after %.0f s.", p.Name,
				report.FormatValue(p.Latency.P50, "ms"), report.FormatValue(p.Latency.P99, "ms"), p.RecoverSec))
		}
	}
	if ref != nil {
		notes = append(notes, fmt.Sprintf("Previous build: %d devices of %d differ from the database (%d changes missed); examples: %s",
			ref.DevicesOff, ref.Devices, ref.Missed, strings.Join(ref.Examples, " | ")))
	}
	if len(r.Examples) > 0 {
		notes = append(notes, "Differences: "+strings.Join(r.Examples, " | "))
	}
	s.Notes = notes
	rp.rep.Sections = append(rp.rep.Sections, s)
	rp.rep.Targets = append(rp.rep.Targets, report.Target{Goal: goal,
		Measured: fmt.Sprintf("%d of %s devices differ, %d changes missed, %d count drift; calm e2e p99 %s", r.DevicesOff, report.Thousands(int64(r.Devices)),
			r.Missed, r.Drift, report.FormatValue(r.Phases[0].Latency.P99, "ms")),
		Met: report.Bool(r.DevicesOff == 0 && r.Missed == 0 && r.Drift == 0 && r.Gaps == 0)})
	_ = key
}

func roundAll(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(int(x*10+0.5)) / 10
	}
	return out
}

// groupLag is how many records of the topic the group has not committed.
func groupLag(ctx context.Context, adm *kadm.Client, group string) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	var lag int64
	ends.Each(func(l kadm.ListedOffset) {
		c, found := committed.Lookup(l.Topic, l.Partition)
		switch {
		case !found || c.Err != nil:
			lag += l.Offset
		case c.At < l.Offset:
			lag += l.Offset - c.At
		}
	})
	return lag, nil
}

func loadAvg() string { return report.LoadAverage() }

// httpPutJSON and httpPostJSON send a JSON body with a bearer credential
// and return the status and the body.
func httpPutJSON(url, cred string, body any) (int, []byte)  { return httpJSON("PUT", url, cred, body) }
func httpPostJSON(url, cred string, body any) (int, []byte) { return httpJSON("POST", url, cred, body) }

func httpJSON(method, url, cred string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+cred)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
