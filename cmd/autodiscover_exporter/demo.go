package main

import (
	"context"
	"time"
)

// warmUp probes every mailbox now and then every interval, so a demo
// shows a populated landing page before Prometheus scrapes anything.
func (ex *exporter) warmUp(ctx context.Context, interval time.Duration) {
	probeAll := func() {
		cfg := ex.config()
		for _, mb := range cfg.Mailboxes {
			mod, ok := cfg.Module(mb.Module)
			if !ok {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, time.Duration(mod.Timeout))
			ex.probeMailbox(pctx, mb, mb.Module, mod)
			cancel()
		}
	}
	probeAll()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			probeAll()
		}
	}
}
