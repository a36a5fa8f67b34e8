package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/exporter-toolkit/web"
)

const (
	// readHeaderTimeout and readTimeout keep slow clients from holding
	// connections open: no request of the exporter has a body worth
	// waiting for.
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	// writeTimeout bounds every answer but /probe's, which sets its own
	// write deadline from the probe's deadline.
	writeTimeout = time.Minute
	// DefaultIdleTimeout closes keep-alive connections nobody uses.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultMaxConnections caps the connections served at once; more
	// wait in the listen queue.
	DefaultMaxConnections = 512
	// shutdownGrace is how long running probes get to finish once ctx ends.
	shutdownGrace = 5 * time.Second
)

// ListenAndServe serves Handler on the addresses, TLS and authentication
// of flags (exporter-toolkit's web configuration, which logs through
// logger) until ctx ends, then shuts down gracefully. It returns nil after
// a shutdown and the listening error otherwise.
func (s *Server) ListenAndServe(ctx context.Context, flags *web.FlagConfig, logger *slog.Logger) error {
	srv := s.httpServer(ctx)
	errc := make(chan error, 1)
	go func() { errc <- s.serve(srv, flags, logger) }()
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

func (s *Server) httpServer(ctx context.Context) *http.Server {
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       s.idleTimeout,
		// Requests carry ctx's values but not its end: at shutdown the
		// probes running get shutdownGrace to finish instead of failing.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// serve listens on the TCP addresses of flags with at most
// s.maxConnections connections served at once. Systemd socket activation
// and vsock addresses are exporter-toolkit's to open, without the cap.
func (s *Server) serve(srv *http.Server, flags *web.FlagConfig, logger *slog.Logger) error {
	if flags.WebSystemdSocket != nil && *flags.WebSystemdSocket {
		return web.ListenAndServe(srv, flags, logger)
	}
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	limiter := newConnLimiter(s.maxConnections)
	srv.ConnState = limiter.connState
	for _, address := range *flags.WebListenAddresses {
		if strings.HasPrefix(address, "vsock://") {
			return web.ListenAndServe(srv, flags, logger)
		}
		l, err := net.Listen("tcp", address)
		if err != nil {
			return err
		}
		listeners = append(listeners, limiter.listener(l))
	}
	return web.ServeMultiple(listeners, srv, flags, logger)
}
