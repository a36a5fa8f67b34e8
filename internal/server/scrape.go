package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"go.yaml.in/yaml/v3"

	"github.com/autodiscover-exporter/autodiscover_exporter/collector"
	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

func (s *Server) handleProbe(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cur := s.loaded()
	cfg := cur.Config
	target := q.Get("target")
	if target == "" {
		s.metrics.probes.WithLabelValues("bad_request").Inc()
		badRequest(w, "target parameter is missing: give the name of a configured mailbox")
		return
	}
	mb, ok := cfg.Mailbox(target)
	if !ok {
		s.metrics.probes.WithLabelValues("bad_request").Inc()
		badRequest(w, "unknown target %q: only mailboxes named in the configuration are probed", target)
		return
	}
	moduleName := mb.Module
	if m := q.Get("module"); m != "" {
		moduleName = m
	}
	if err := cur.mayProbeWith(mb, moduleName); err != nil {
		s.metrics.probes.WithLabelValues("bad_request").Inc()
		badRequest(w, "%v", err)
		return
	}
	mod, _ := cfg.Module(moduleName)
	timeout, err := probeTimeout(r, time.Duration(mod.Timeout), s.timeoutOffset)
	if err != nil {
		s.metrics.probes.WithLabelValues("bad_request").Inc()
		badRequest(w, "%v", err)
		return
	}

	// The server's write timeout is for quick answers; a probe may run to
	// its deadline, and then gets the time every other answer gets.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout + writeTimeout))
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	prober, _ := cur.Prober(moduleName)
	res, age := s.probeMailbox(ctx, mb, moduleName, prober)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collector.New(res, collector.Options{Timeout: timeout, ResultAge: age}))
	if debug, _ := strconv.ParseBool(q.Get("debug")); debug {
		writeDebug(w, reg, res, mod)
		return
	}
	// Uncompressed: the answer is a few kilobytes for a scraper on the
	// same network, and gzip cost more CPU than gathering and encoding
	// it (the profile of bench/run.sh's cycle).
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{DisableCompression: true}).ServeHTTP(w, r)
}

// probeMailbox serves a mailbox with min_interval its last result while it
// is young enough (concurrent scrapes of it wait for one chain), and runs
// the chain otherwise. It returns the result and its age.
func (s *Server) probeMailbox(ctx context.Context, mb *config.Mailbox, moduleName string, prober *probe.Prober) (*probe.Result, time.Duration) {
	interval := time.Duration(mb.MinInterval)
	if interval <= 0 {
		return s.runProbe(ctx, mb, moduleName, prober), 0
	}
	// Keyed by mailbox and module: a module= override is a result of its
	// own, but one that min_interval serves like any other.
	entry := s.recent.entry(mb.Name + "\x00" + moduleName)
	select {
	case entry.lock <- struct{}{}:
		defer func() { <-entry.lock }()
	case <-ctx.Done():
		return &probe.Result{Mailbox: mb.NormalizedAddress(), Reason: "the deadline was reached while another scrape of this mailbox was running"}, 0
	}
	if entry.res != nil {
		if age := time.Since(entry.when); age < interval {
			return entry.res, age
		}
	}
	res := s.runProbe(ctx, mb, moduleName, prober)
	entry.res, entry.when = res, time.Now()
	return res, 0
}

// runProbe runs the chain for a configured mailbox once a probe slot is
// free, counts and logs the outcome and keeps it in the history.
func (s *Server) runProbe(ctx context.Context, mb *config.Mailbox, moduleName string, prober *probe.Prober) *probe.Result {
	s.metrics.waiting.Inc()
	select {
	case s.slots <- struct{}{}:
		s.metrics.waiting.Dec()
		defer func() { <-s.slots }()
	case <-ctx.Done():
		s.metrics.waiting.Dec()
		s.metrics.probes.WithLabelValues("failure").Inc()
		return &probe.Result{Mailbox: mb.NormalizedAddress(), Reason: fmt.Sprintf("the deadline was reached while waiting for one of %d probe slots", cap(s.slots))}
	}
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	res, err := prober.Run(ctx, Target(mb))
	if err != nil {
		// The address was validated at load: this cannot happen, but a
		// failed probe is the honest answer if it does.
		res = &probe.Result{Mailbox: mb.NormalizedAddress(), Reason: err.Error()}
	}
	outcome := "failure"
	if res.Success {
		outcome = "success"
	}
	s.metrics.probes.WithLabelValues(outcome).Inc()
	s.history.add(mb.Name, moduleName, res)
	_ = level.Debug(s.logger).Log("msg", "probe finished", "target", mb.Name, "module", moduleName, "success", res.Success, "hops", res.RedirectHops, "duration_seconds", res.Duration.Seconds(), "reason", res.Reason)
	return res
}

// probeTimeout is the scrape timeout Prometheus announced minus the
// offset, capped by the module timeout; 120s when Prometheus said nothing.
func probeTimeout(r *http.Request, module, offset time.Duration) (time.Duration, error) {
	scrape := 120 * time.Second
	if v := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs < 0 {
			return 0, fmt.Errorf("X-Prometheus-Scrape-Timeout-Seconds %q is not a number of seconds", v)
		}
		if secs > 0 {
			scrape = time.Duration(secs * float64(time.Second))
		}
	}
	limit := scrape - offset
	if module > 0 && (module < limit || limit <= 0) {
		return module, nil
	}
	if limit <= 0 {
		return 0, fmt.Errorf("scrape timeout %v leaves no time after the %v offset", scrape, offset)
	}
	return limit, nil
}

// writeDebug answers ?debug=true: what a person needs to see why a probe
// failed, in one plain-text page.
func writeDebug(w http.ResponseWriter, reg *prometheus.Registry, res *probe.Result, mod *config.Module) {
	var b bytes.Buffer
	b.WriteString("Step log:\n\n")
	res.WriteLog(&b)
	b.WriteString("\n\nMetrics that would have been returned:\n\n")
	mfs, err := reg.Gather()
	if err == nil {
		enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			_ = enc.Encode(mf)
		}
	} else {
		fmt.Fprintf(&b, "gathering failed: %v\n", err)
	}
	b.WriteString("\n\nModule configuration (secrets hidden):\n\n")
	if out, err := yaml.Marshal(mod); err == nil {
		b.Write(out)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}
