package httpapi

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/signal-notify/signal/internal/auth"
	"github.com/signal-notify/signal/internal/hub"
	"github.com/signal-notify/signal/internal/metrics"
)

// Check is one readiness condition: nil when fine.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Options are what the handlers need.
type Options struct {
	Hub      *hub.Hub
	Relay    Relay
	Inbox    Inbox
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
}

type api struct {
	Options
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
	a := &api{Options: o}
	mux := http.NewServeMux()
	for _, rt := range a.routeTable() {
		pattern := rt.Method + " " + rt.Path
		h := http.Handler(rt.handler)
		if rt.handler == nil { // /metrics
			h = promhttp.HandlerFor(o.Metrics.Registry, promhttp.HandlerOpts{})
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
	return a.recoverer(mux)
}

// allowed lists the methods that have a route for r's path.
func allowed(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{"GET", "POST"} {
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

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	out := readiness{Status: "ready", Checks: map[string]string{}}
	if a.Draining() {
		out.Status = "draining"
		out.Checks["shutdown"] = "draining"
	}
	for _, c := range a.Checks {
		if err := c.Check(ctx); err != nil {
			out.Checks[c.Name] = err.Error()
			if out.Status == "ready" {
				out.Status = "unavailable"
			}
		} else {
			out.Checks[c.Name] = "ok"
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
		h.ServeHTTP(rec, r)
		code := rec.status
		if code == 0 {
			code = http.StatusSwitchingProtocols // hijacked by the WebSocket upgrade
		}
		a.Metrics.HTTPRequests.WithLabelValues(route, strconv.Itoa(code)).Inc()
		a.Metrics.HTTPSeconds.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

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
