package server

import (
	"context"
	"time"
)

// WarmUp probes every mailbox now and then every interval until ctx ends,
// so that a demo shows a populated landing page before Prometheus scrapes
// anything.
func (s *Server) WarmUp(ctx context.Context, interval time.Duration) {
	s.probeAll(ctx)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.probeAll(ctx)
		}
	}
}

// probeAll runs every configured mailbox once, one after another, each
// within its module's timeout; min_interval mailboxes may be served from
// the cache as a scrape would be.
func (s *Server) probeAll(ctx context.Context) {
	cur := s.loaded()
	for _, mb := range cur.Config.Mailboxes {
		prober, ok := cur.Prober(mb.Module)
		if !ok {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, prober.Timeout())
		s.probeMailbox(pctx, mb, mb.Module, prober)
		cancel()
	}
}
