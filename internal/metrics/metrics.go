package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are every series Signal exports.
type Metrics struct {
	Registry *prometheus.Registry

	Consumed  prometheus.Counter
	Persisted prometheus.Counter
	Repushed  prometheus.Counter
	Muted     prometheus.Counter
	Expired   prometheus.Counter
	// MemberChanges counts members.topic records applied, by op.
	MemberChanges *prometheus.CounterVec
	DeadLettered  *prometheus.CounterVec
	Retries       prometheus.Counter
	BatchSize     prometheus.Histogram
	BatchSeconds  prometheus.Histogram
	Lag           *prometheus.GaugeVec

	Connections   prometheus.Gauge
	FramesSent    prometheus.Counter
	SlowDropped   prometheus.Counter
	FramesDropped prometheus.Counter
	WSRefused     *prometheus.CounterVec
	WSRateLimited prometheus.Counter
	WSQueuedBytes *FuncGauge

	HTTPRequests *prometheus.CounterVec
	HTTPSeconds  *prometheus.HistogramVec
	// HTTPConnsRefused counts connections http.addr refused at accept, by
	// reason; HTTPConns is the connections open there.
	HTTPConnsRefused *prometheus.CounterVec
	HTTPConns        *FuncGauge

	RelayReceived *prometheus.CounterVec
	RelayGaps     prometheus.Counter
	// WSShed counts clients closed with 1012 to rebalance instances.
	WSShed prometheus.Counter
	// The sync stream (internal/stream).
	StreamCatchups    prometheus.Counter
	StreamRepairs     *prometheus.CounterVec
	StreamResets      *prometheus.CounterVec
	StreamPageSeconds prometheus.Histogram
}

// FuncGauge is a gauge whose value its owner computes when scraped (a
// counter it keeps anyway, read without a cost on its hot path).
type FuncGauge struct {
	fn atomic.Pointer[func() float64]
}

// Set makes fn the source of the gauge's value.
func (g *FuncGauge) Set(fn func() float64) { g.fn.Store(&fn) }

func (g *FuncGauge) value() float64 {
	if fn := g.fn.Load(); fn != nil {
		return (*fn)()
	}
	return 0
}

// New registers the metrics (and the Go and process collectors) in a new registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) prometheus.Collector { r.MustRegister(c); return c }
	queued, conns := &FuncGauge{}, &FuncGauge{}
	r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "signal_http_connections",
		Help: "TCP connections open on http.addr (idle keep-alives and WebSockets included)."}, conns.value))
	r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "signal_websocket_queued_bytes",
		Help: "Bytes waiting in WebSocket clients' outbound queues (each counted against websocket.queue_bytes)."}, queued.value))
	return &Metrics{
		WSQueuedBytes: queued,
		HTTPConns:     conns,
		Registry:      r,
		Consumed: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "signal_messages_consumed_total",
			Help: "Kafka records handled (stored as notifications or as dead letters)."})).(prometheus.Counter),
		Persisted: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "signal_notifications_persisted_total",
			Help: "Notification rows inserted (one per recipient)."})).(prometheus.Counter),
		Repushed: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "signal_notifications_repushed_total",
			Help: "Rows of redelivered records pushed again with their stored id."})).(prometheus.Counter),
		Expired: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "signal_records_expired_total",
			Help: "Records skipped because they are older than notifications.retention (their offsets are committed)."})).(prometheus.Counter),
		Muted: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "signal_notifications_muted_total",
			Help: "Notifications not stored nor pushed because their recipient muted their type, organizer or merchant."})).(prometheus.Counter),
		MemberChanges: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "signal_member_changes_total",
			Help: "Membership changes applied from members.topic, by op (add, remove, replace)."}, []string{"op"})).(*prometheus.CounterVec),
		DeadLettered: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "signal_dead_letters_total",
			Help: "Records stored as dead letters, by reason."}, []string{"reason"})).(*prometheus.CounterVec),
		Retries: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "signal_batch_retries_total",
			Help: "Batch attempts that failed transiently and were retried."})).(prometheus.Counter),
		BatchSize: f(prometheus.NewHistogram(prometheus.HistogramOpts{Name: "signal_batch_records",
			Help: "Records per handled batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 7)})).(prometheus.Histogram),
		BatchSeconds: f(prometheus.NewHistogram(prometheus.HistogramOpts{Name: "signal_batch_duration_seconds",
			Help: "Time to handle one batch: validate, store, push.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)})).(prometheus.Histogram),
		Lag: f(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "signal_consumer_lag",
			Help: "Records behind the partition's high watermark, as of the last fetch."}, []string{"topic", "partition"})).(*prometheus.GaugeVec),
		Connections: f(prometheus.NewGauge(prometheus.GaugeOpts{Name: "signal_websocket_connections",
			Help: "WebSocket clients connected to this instance."})).(prometheus.Gauge),
		FramesSent: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "signal_websocket_frames_sent_total",
			Help: "Frames queued to WebSocket clients."})).(prometheus.Counter),
		SlowDropped: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "signal_websocket_slow_clients_dropped_total",
			Help: "Clients disconnected because more than websocket.queue_bytes waited for them (close 3008), or they took nothing for 3 ping intervals."})).(prometheus.Counter),
		FramesDropped: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "signal_websocket_frames_dropped_total",
			Help: "Frames not delivered because their client was closing."})).(prometheus.Counter),
		WSRefused: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "signal_websocket_refused_total",
			Help: "WebSocket upgrades refused before the upgrade, by reason: rate_limited (websocket.upgrade_rate), too_many_connections (websocket.max_connections_per_subject), server_full (websocket.max_connections)."}, []string{"reason"})).(*prometheus.CounterVec),
		WSRateLimited: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "signal_websocket_actions_rate_limited_total",
			Help: "Client actions refused with rate_limited (websocket.action_rate)."})).(prometheus.Counter),
		HTTPRequests: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "signal_http_requests_total",
			Help: "REST and health requests by route pattern and status code."}, []string{"route", "code"})).(*prometheus.CounterVec),
		HTTPSeconds: f(prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "signal_http_request_duration_seconds",
			Help: "REST request latency by route pattern.", Buckets: prometheus.DefBuckets}, []string{"route"})).(*prometheus.HistogramVec),
		HTTPConnsRefused: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "signal_http_connections_refused_total",
			Help: "Connections to http.addr refused when accepted, by reason: too_many_connections (http.max_connections_per_ip), server_full (http.max_connections and its reserve for health checks)."}, []string{"reason"})).(*prometheus.CounterVec),
		RelayReceived: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "signal_relay_messages_total",
			Help: "Cross-instance messages received from PostgreSQL, by kind."}, []string{"kind"})).(*prometheus.CounterVec),
		RelayGaps: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "signal_relay_gaps_total",
			Help: "Times the relay listener came back after a disconnection while other instances were alive (every stream was checked against the database)."})).(prometheus.Counter),
		WSShed: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "signal_websocket_rebalanced_total",
			Help: "Clients closed with 1012 so that they reconnect to an instance holding fewer (cluster.rebalance_interval)."})).(prometheus.Counter),
		StreamCatchups: f(prometheus.NewCounter(prometheus.CounterOpts{Name: "signal_stream_catchups_total",
			Help: "Streams that resumed from a client's position (a connect or join with since) and caught up from the database."})).(prometheus.Counter),
		StreamRepairs: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "signal_stream_repairs_total",
			Help: "Streams caught up from the database while live, by cause: gap (a live frame skipped a position), check (a head read found it behind)."}, []string{"cause"})).(*prometheus.CounterVec),
		StreamResets: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "signal_stream_resets_total",
			Help: "Streams that could not resume from the client's position (signal/system/reset), by reason."}, []string{"reason"})).(*prometheus.CounterVec),
		StreamPageSeconds: f(prometheus.NewHistogram(prometheus.HistogramOpts{Name: "signal_stream_page_seconds",
			Help: "Time to read one page of a stream from the database.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)})).(prometheus.Histogram),
	}
}
