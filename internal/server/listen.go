package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/exporter-toolkit/web"
)

const (
	// readHeaderTimeout keeps slow clients from holding connections open.
	readHeaderTimeout = 10 * time.Second
	// shutdownGrace is how long running probes get to finish once ctx ends.
	shutdownGrace = 5 * time.Second
)

// ListenAndServe serves Handler on the addresses, TLS and authentication
// of flags (exporter-toolkit's web configuration, which logs through
// logger) until ctx ends, then shuts down gracefully. It returns nil after
// a shutdown and the listening error otherwise.
func (s *Server) ListenAndServe(ctx context.Context, flags *web.FlagConfig, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		// Requests carry ctx's values but not its end: at shutdown the
		// probes running get shutdownGrace to finish instead of failing.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- web.ListenAndServe(srv, flags, logger) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
		_ = level.Info(s.logger).Log("msg", "shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
		return nil
	}
}
