package httpapi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/semaphore"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/clientaddr"
	"github.com/signal-notify/signal/internal/hub"
	"github.com/signal-notify/signal/internal/metrics"
	"github.com/signal-notify/signal/internal/tracing"
)

// Check is one readiness condition: nil when fine.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Options are what the handlers need.
type Options struct {
	Hub   *hub.Hub
	Relay Relay
	Inbox Inbox
	// Memberships and Preferences serve /memberships and /preferences.
	Memberships Memberships
	Preferences Preferences
	// Notifier creates, retracts and updates notifications (nil: 503).
	Notifier Notifier
	Verifier *auth.Verifier
	APIKeys  *auth.APIKeys
	Checks   []Check
	// Console serves the web console under /console/ (nil: no console).
	Console http.Handler
	// StatusSource fills GET /status with what only the daemon knows.
	StatusSource StatusSource
	Metrics      *metrics.Metrics
	Logger       *slog.Logger
	// Draining is true once shutdown began: readiness fails so load
	// balancers stop sending new clients.
	Draining func() bool
	// MetricsElsewhere drops GET /metrics from this handler: it is served
	// on http.metrics_addr instead (MetricsHandler).
	MetricsElsewhere bool
	// TrustedProxies (http.trusted_proxies): requests from these peers get
	// the client address their X-Forwarded-For or Forwarded names as
	// RemoteAddr (clientaddr), before anything reads it.
	TrustedProxies []netip.Prefix
	// Tracer continues the trace of a request with a sampled traceparent
	// in a server span named by its route (nil: none).
	Tracer trace.Tracer
}

type api struct {
	Options
	bodies *semaphore.Weighted // membership body bytes in flight
	ready  readyCache
}

// New returns the HTTP handler of a serve instance.
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StatusSource == nil {
		o.StatusSource = func(context.Context) Status { return Status{} }
	}
	if o.Draining == nil {
		o.Draining = func() bool { return false }
	}
	a := &api{Options: o, bodies: semaphore.NewWeighted(MaxMembershipBytesInFlight)}
	mux := http.NewServeMux()
	for _, rt := range a.routeTable() {
		pattern := rt.Method + " " + rt.Path
		h := http.Handler(rt.handler)
		if rt.handler == nil { // /metrics
			if o.MetricsElsewhere {
				continue
			}
			h = MetricsHandler(o.Metrics)
		}
		mux.Handle(pattern, a.instrument(pattern, h))
	}
	if o.Console != nil {
		mux.Handle("GET /console/", a.instrument("GET /console/", http.StripPrefix("/console", o.Console)))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowed(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
			return
		}
		writeError(w, http.StatusNotFound, CodeNotFound, "no route "+r.Method+" "+r.URL.Path)
	})
	return clientaddr.New(o.TrustedProxies).Middleware(a.recoverer(closeUnread(mux)))
}

// MetricsHandler serves the Prometheus metrics.
func MetricsHandler(m *metrics.Metrics) http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// allowed lists the methods that have a route for r's path.
func allowed(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			out = append(out, m)
		}
	}
	return out
}

func (a *api) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Readiness values of one check. /readyz needs no credential, so it never
// says more than these (no host, user or error text): the details are on
// GET /status, with an API key.
const (
	CheckOK       = "ok"
	CheckFailing  = "failing"
	CheckDraining = "draining"
)

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// ReadyTTL is how long /readyz answers from the checks it last ran: the
// endpoint needs no credential, and each run of the checks costs a
// database round trip and a broker request (3,931 a second from one
// client, before issue 20).
const ReadyTTL = time.Second

// readyCache holds the last run of the checks; concurrent requests while
// none is fresh share one run.
type readyCache struct {
	mu      sync.Mutex
	at      time.Time
	checks  map[string]string
	running chan struct{} // closed when the run in progress ends
}

// readyResults runs the checks at most once per ReadyTTL and returns their
// outcome (not to be modified).
func (a *api) readyResults() map[string]string {
	c := &a.ready
	c.mu.Lock()
	for {
		if c.checks != nil && time.Since(c.at) < ReadyTTL {
			out := c.checks
			c.mu.Unlock()
			return out
		}
		if c.running == nil {
			break
		}
		ch := c.running
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
	ch := make(chan struct{})
	c.running = ch
	c.mu.Unlock()

	// Not the request's context: the run serves every request that waits.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	out := make(map[string]string, len(a.Checks))
	for _, chk := range a.Checks {
		if err := chk.Check(ctx); err != nil {
			out[chk.Name] = CheckFailing
		} else {
			out[chk.Name] = CheckOK
		}
	}
	cancel()

	c.mu.Lock()
	c.checks, c.at, c.running = out, time.Now(), nil
	c.mu.Unlock()
	close(ch)
	return out
}

func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	out := readiness{Status: "ready", Checks: map[string]string{}}
	if a.Draining() { // never cached: load balancers must see it at once
		out.Status = "draining"
		out.Checks["shutdown"] = CheckDraining
	}
	for name, v := range a.readyResults() {
		out.Checks[name] = v
		if v != CheckOK && out.Status == "ready" {
			out.Status = "unavailable"
		}
	}
	status := http.StatusOK
	if out.Status != "ready" {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, out)
}

// websocket authenticates before the upgrade: a bad token is a plain 401.
// The connection limits come first, so a flood costs no verification and
// nothing past the limits is upgraded (refusals: 429 or 503 with
// Retry-After).
func (a *api) websocket(w http.ResponseWriter, r *http.Request) {
	if a.Hub.Closing() {
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "server is shutting down")
		return
	}
	if ref := a.Hub.AllowUpgrade(r); ref != nil {
		writeRefusal(w, ref)
		return
	}
	token := auth.BearerToken(r)
	if token == "" {
		token = r.URL.Query().Get("token")
	}
	claims, err := a.Verifier.Verify(token)
	if err != nil {
		writeError(w, http.StatusUnauthorized, CodeUnauthorized, err.Error())
		return
	}
	// http.read_timeout and http.write_timeout bound HTTP requests; an
	// upgraded connection lives as long as its client (the hub pings it).
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	if err := a.Hub.Upgrade(w, r, claims); err != nil {
		var ref *hub.Refusal
		if errors.As(err, &ref) {
			writeRefusal(w, ref)
			return
		}
		a.Logger.Debug("websocket upgrade failed", "err", err)
	}
}

func writeRefusal(w http.ResponseWriter, ref *hub.Refusal) {
	secs := max(1, int((ref.RetryAfter+time.Second-1)/time.Second))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeError(w, ref.Status, ref.Code, ref.Message)
}

// statusRecorder remembers the status code for metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Hijack hands the connection to the WebSocket upgrade (gws asserts
// http.Hijacker directly).
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(s.ResponseWriter).Hijack()
}

func (a *api) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		var span trace.Span
		if a.Tracer != nil && r.Header.Get("traceparent") != "" {
			if ctx, sampled := tracing.Extract(r.Context(), propagation.HeaderCarrier(r.Header)); sampled {
				ctx, span = a.Tracer.Start(ctx, route, trace.WithSpanKind(trace.SpanKindServer),
					trace.WithAttributes(attribute.String("http.route", route), attribute.String("client.address", r.RemoteAddr)))
				r = r.WithContext(ctx)
			}
		}
		h.ServeHTTP(rec, r)
		code := rec.status
		if code == 0 {
			code = http.StatusSwitchingProtocols // hijacked by the WebSocket upgrade
		}
		if span != nil {
			span.SetAttributes(attribute.Int("http.response.status_code", code))
			if code >= 500 {
				span.SetStatus(codes.Error, http.StatusText(code))
			}
			span.End()
		}
		a.Metrics.HTTPRequests.WithLabelValues(route, strconv.Itoa(code)).Inc()
		a.Metrics.HTTPSeconds.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// closeUnread makes an error answered before the request body was read to
// its end close the connection. Otherwise the server first reads what is
// left of the body, to reuse the connection: a client that declared a body
// and never sends it would wait http.read_timeout for its 401.
func closeUnread(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body := &eofBody{ReadCloser: r.Body}
		r = r.WithContext(r.Context())
		r.Body = body
		next.ServeHTTP(&closeOnError{ResponseWriter: w, body: body}, r)
	})
}

// eofBody notes whether the body was read to its end.
type eofBody struct {
	io.ReadCloser
	eof atomic.Bool
}

func (b *eofBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

type closeOnError struct {
	http.ResponseWriter
	body *eofBody
}

func (c *closeOnError) WriteHeader(code int) {
	if code >= 400 && !c.body.eof.Load() {
		// Close after the answer, and do not wait for the rest of the body
		// before closing either: the handler will not read it.
		c.Header().Set("Connection", "close")
		_ = http.NewResponseController(c.ResponseWriter).SetReadDeadline(time.Now())
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *closeOnError) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (a *api) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.Logger.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeError(w, http.StatusInternalServerError, CodeInternal, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}
