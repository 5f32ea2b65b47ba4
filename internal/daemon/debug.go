package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/signal-notify/signal/internal/config"
)

// servePprof serves the runtime profiles on their own listener, apart from
// the public API, on a loopback address unless explicitly allowed.
func servePprof(d config.Debug, run *routines, log *slog.Logger) (func(), error) {
	if err := checkPprofAddr(d); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", d.PprofAddr)
	if err != nil {
		return nil, fmt.Errorf("debug.pprof_addr %s: %w", d.PprofAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: a CPU profile or a trace streams for as long as asked.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	run.Go("pprof", func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("pprof: %w", err)
		}
		return nil
	})
	log.Warn("pprof listening: do not expose it", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}
