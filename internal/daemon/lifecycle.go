package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/signal-notify/signal/internal/certreload"
	"github.com/signal-notify/signal/internal/config"
	"github.com/signal-notify/signal/internal/connlimit"
	"github.com/signal-notify/signal/internal/metrics"
	"github.com/signal-notify/signal/internal/tlslisten"
)

// Steps of the graceful stop, in order (Options.OnShutdown).
const (
	StepDraining        = "draining"         // /readyz answers 503
	StepConsumerStopped = "consumer stopped" // the batch in hand is stored and committed, the group left
	StepHTTPStopped     = "http stopped"     // no new request or connection; REST requests in flight answered
	StepClientsClosed   = "clients closed"   // WebSocket clients closed with 1001 over websocket.close_window
	StepRelayStopped    = "relay stopped"    // this instance unregistered for the others
	StepPoolClosed      = "pool closed"      // database connections closed
)

// newHTTPServer applies the http.* limits: what one connection may cost
// before and between requests (docs/security.md).
func newHTTPServer(c config.HTTP, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout, // the WebSocket handler lifts it before the upgrade
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// listenTLS serves HTTPS and WSS on ln when http.tls_cert_file is set
// (certreload: a rotated pair is picked up without a restart); else ln as
// it is.
func listenTLS(ln net.Listener, c config.HTTP, log *slog.Logger) (net.Listener, error) {
	if c.TLSCertFile == "" {
		return ln, nil
	}
	r, err := certreload.New(c.TLSCertFile, c.TLSKeyFile, log.With("component", "tls"))
	if err != nil {
		return nil, err
	}
	// Not tls.NewListener: the hub needs each connection's descriptor.
	return tlslisten.New(ln, r.Config(), c.ReadHeaderTimeout, log.With("component", "tls")), nil
}

// listenHTTP listens on http.addr with the connection caps: in all
// (http.max_connections, and a reserve for health checks past it) and per
// source address (http.max_connections_per_ip), idle keep-alives and
// WebSockets included (docs/security.md).
func listenHTTP(c config.HTTP, m *metrics.Metrics, log *slog.Logger) (*connlimit.Listener, error) {
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("http.addr %s: %w", c.Addr, err)
	}
	maxConns := c.MaxConnections
	if maxConns == 0 {
		maxConns = connlimit.DefaultMax()
	}
	lim := connlimit.New(ln, connlimit.Options{
		Max: maxConns, PerIP: c.MaxConnectionsPerIP, Logger: log.With("component", "http"),
		OnRefuse: func(reason string) { m.HTTPConnsRefused.WithLabelValues(reason).Inc() },
	})
	m.HTTPConns.Set(func() float64 { return float64(lim.Open()) })
	return lim, nil
}

func serveHTTP(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	return nil
}

// shutdown is the graceful stop: each step in turn, all of them within
// shutdown.timeout; past it, what is left is closed at once.
func (s *server) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Shutdown.Timeout)
	defer cancel()
	g := &graceful{s: s, ctx: ctx}

	// Load balancers stop sending clients; the consumer finishes the batch
	// in hand, commits it and leaves the group while clients still get its
	// pushes.
	s.draining.Store(true)
	g.reached(StepDraining)
	s.stopConsuming()
	g.wait("the consumer (its last batch is redelivered)", s.consumerDone)
	g.reached(StepConsumerStopped)

	// HTTP requests in flight may take what the clients' close window leaves.
	httpCtx, cancelHTTP := context.WithDeadline(ctx, deadline(ctx).Add(-s.cfg.WebSocket.CloseWindow))
	for _, srv := range []*http.Server{s.srv, s.metricsSrv} {
		if srv == nil {
			continue
		}
		if err := srv.Shutdown(httpCtx); err != nil {
			s.log.Warn("http shutdown: closing the connections left", "err", err)
			_ = srv.Close()
		}
	}
	cancelHTTP()
	g.reached(StepHTTPStopped)

	s.h.Shutdown(ctx, s.cfg.WebSocket.CloseWindow)
	g.reached(StepClientsClosed)

	s.stopRelay() // after the clients: it unregisters this instance last
	g.wait("the relay", s.relayDone)
	g.reached(StepRelayStopped)

	poolClosed := make(chan struct{})
	s.run.Go("pool close", func() error { defer close(poolClosed); s.st.Close(); return nil })
	g.wait("the database pool", poolClosed)
	g.reached(StepPoolClosed)

	s.stopPprof()
	return g.end()
}

// graceful follows one shutdown: the steps reached and the waits that
// overran shutdown.timeout.
type graceful struct {
	s    *server
	ctx  context.Context // ends at shutdown.timeout
	late []string
}

// wait waits for done until the deadline, and notes it late past it.
func (g *graceful) wait(what string, done <-chan struct{}) {
	select {
	case <-done:
	case <-g.ctx.Done():
		g.late = append(g.late, what)
		g.s.log.Error("shutdown.timeout passed: going on without it", "waiting for", what, "timeout", g.s.cfg.Shutdown.Timeout)
	}
}

// reached logs step and tells Options.OnShutdown.
func (g *graceful) reached(step string) {
	g.s.log.Info("shutdown", "step", step)
	if g.s.o.OnShutdown != nil {
		g.s.o.OnShutdown(step)
	}
}

// end waits for the routines left and returns what went wrong: a routine's
// error, one still running, or a step that overran.
func (g *graceful) end() error {
	s := g.s
	err := s.run.Wait(g.ctx)
	if len(g.late) > 0 && err == nil {
		err = fmt.Errorf("shutdown.timeout (%s) passed while waiting for %v", s.cfg.Shutdown.Timeout, g.late)
	}
	if runErr := s.run.Err(); runErr != nil {
		err = errors.Join(runErr, err)
	}
	if err != nil {
		s.log.Error("signal stopped", "err", err)
		return err
	}
	s.log.Info("signal stopped")
	return nil
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}
