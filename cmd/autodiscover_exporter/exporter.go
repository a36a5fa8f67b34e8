package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"go.yaml.in/yaml/v3"

	"github.com/autodiscover-exporter/autodiscover_exporter/collector"
	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// exporter holds the live configuration, the exporter's own metrics and
// the history of recent probes. Everything reachable from a request goes
// through it; there is no package-level state.
type exporter struct {
	configFile    string
	timeoutOffset time.Duration
	log           logger
	// demo marks a run against the simulated estate: pages say so.
	demo bool

	mu  sync.RWMutex
	cfg *config.Config

	history *history
	// backoff withholds credentials after refusals (lockout protection).
	backoff *probe.Backoff
	// slots bounds the chains running at once.
	slots chan struct{}
	// recent serves min_interval mailboxes their last result.
	recent *resultCache

	registry          *prometheus.Registry
	inFlight          prometheus.Gauge
	waiting           prometheus.Gauge
	probes            *prometheus.CounterVec
	reloadSuccessful  prometheus.Gauge
	reloadSuccessTime prometheus.Gauge
}

func newExporter(o options, lg logger) (*exporter, error) {
	cfg, err := config.Load(o.configFile)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	ex := &exporter{
		configFile:    o.configFile,
		timeoutOffset: time.Duration(o.timeoutOffset * float64(time.Second)),
		log:           lg,
		cfg:           cfg,
		history:       newHistory(o.historyLimit),
		backoff:       probe.NewBackoff(o.backoffInitial, o.backoffMax),
		slots:         make(chan struct{}, max(o.maxConcurrent, 1)),
		recent:        newResultCache(),
		registry:      reg,
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "autodiscover_exporter_probes_in_flight",
			Help: "Chains running now.",
		}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "autodiscover_exporter_probes_waiting",
			Help: "Scrapes waiting for a probe slot (--probe.max-concurrent).",
		}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autodiscover_exporter_probes_total",
			Help: "Probe requests by result: success, failure, or bad_request (unknown target or module).",
		}, []string{"result"}),
		reloadSuccessful: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "autodiscover_exporter_config_last_reload_successful",
			Help: "Whether the last configuration reload succeeded (1) or was rejected (0).",
		}),
		reloadSuccessTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "autodiscover_exporter_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully.",
		}),
	}
	for _, r := range []string{"success", "failure", "bad_request"} {
		ex.probes.WithLabelValues(r)
	}
	ex.reloadSuccessful.Set(1)
	ex.reloadSuccessTime.SetToCurrentTime()
	reg.MustRegister(
		versioncollector.NewCollector(exporterName),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		ex.probes, ex.reloadSuccessful, ex.reloadSuccessTime, ex.inFlight, ex.waiting,
	)
	return ex, nil
}

func (ex *exporter) config() *config.Config {
	ex.mu.RLock()
	defer ex.mu.RUnlock()
	return ex.cfg
}

// reload reads the configuration file again. A broken file is rejected and
// the running configuration stays.
func (ex *exporter) reload() error {
	cfg, err := config.Load(ex.configFile)
	if err != nil {
		ex.reloadSuccessful.Set(0)
		_ = level.Error(ex.log.kit).Log("msg", "configuration reload rejected; the previous configuration stays in use", "file", ex.configFile, "err", err)
		return err
	}
	ex.mu.Lock()
	ex.cfg = cfg
	ex.mu.Unlock()
	ex.history.forget(func(target string) bool { _, ok := cfg.Mailbox(target); return ok })
	// A changed configuration may carry a fixed password: try again.
	ex.backoff.ResetAll()
	ex.recent.clear()
	ex.reloadSuccessful.Set(1)
	ex.reloadSuccessTime.SetToCurrentTime()
	_ = level.Info(ex.log.kit).Log("msg", "configuration reloaded", "file", ex.configFile, "modules", len(cfg.Modules), "mailboxes", len(cfg.Mailboxes))
	return nil
}

func (ex *exporter) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", ex.handleLanding)
	mux.HandleFunc("/probe", ex.handleProbe)
	mux.Handle("/metrics", promhttp.HandlerFor(ex.registry, promhttp.HandlerOpts{Registry: ex.registry}))
	mux.HandleFunc("/sd", ex.handleSD)
	mux.HandleFunc("/logs", ex.handleLogs)
	mux.HandleFunc("/config", ex.handleConfig)
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "Healthy")
	})
	mux.HandleFunc("/-/reload", ex.handleReload)
	mux.HandleFunc("/-/backoff/reset", ex.handleBackoffReset)
	return mux
}

func badRequest(w http.ResponseWriter, format string, args ...any) {
	http.Error(w, fmt.Sprintf(format, args...), http.StatusBadRequest)
}

func (ex *exporter) handleProbe(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cfg := ex.config()
	target := q.Get("target")
	if target == "" {
		ex.probes.WithLabelValues("bad_request").Inc()
		badRequest(w, "target parameter is missing: give the name of a configured mailbox")
		return
	}
	mb, ok := cfg.Mailbox(target)
	if !ok {
		ex.probes.WithLabelValues("bad_request").Inc()
		badRequest(w, "unknown target %q: only mailboxes named in the configuration are probed", target)
		return
	}
	moduleName := mb.Module
	if m := q.Get("module"); m != "" {
		moduleName = m
	}
	mod, ok := cfg.Module(moduleName)
	if !ok {
		ex.probes.WithLabelValues("bad_request").Inc()
		badRequest(w, "unknown module %q", moduleName)
		return
	}
	timeout, err := probeTimeout(r, time.Duration(mod.Timeout), ex.timeoutOffset)
	if err != nil {
		ex.probes.WithLabelValues("bad_request").Inc()
		badRequest(w, "%v", err)
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	res, age := ex.probeMailbox(ctx, mb, moduleName, mod)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collector.New(res, collector.Options{Timeout: timeout, ResultAge: age}))
	if debug, _ := strconv.ParseBool(q.Get("debug")); debug {
		ex.writeDebug(w, reg, res, mod)
		return
	}
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// probeMailbox serves a mailbox with min_interval its last result while it
// is young enough (concurrent scrapes of it wait for one chain), and runs
// the chain otherwise. It returns the result and its age.
func (ex *exporter) probeMailbox(ctx context.Context, mb *config.Mailbox, moduleName string, mod *config.Module) (*probe.Result, time.Duration) {
	interval := time.Duration(mb.MinInterval)
	if interval <= 0 || moduleName != mb.Module {
		return ex.runProbe(ctx, mb, moduleName, mod), 0
	}
	entry := ex.recent.entry(mb.Name)
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
	res := ex.runProbe(ctx, mb, moduleName, mod)
	entry.res, entry.when = res, time.Now()
	return res, 0
}

// runProbe runs the chain for a configured mailbox once a probe slot is
// free, counts and logs the outcome and keeps it in the history.
func (ex *exporter) runProbe(ctx context.Context, mb *config.Mailbox, moduleName string, mod *config.Module) *probe.Result {
	ex.waiting.Inc()
	select {
	case ex.slots <- struct{}{}:
		ex.waiting.Dec()
		defer func() { <-ex.slots }()
	case <-ctx.Done():
		ex.waiting.Dec()
		ex.probes.WithLabelValues("failure").Inc()
		return &probe.Result{Mailbox: mb.NormalizedAddress(), Reason: fmt.Sprintf("the deadline was reached while waiting for one of %d probe slots", cap(ex.slots))}
	}
	ex.inFlight.Inc()
	defer ex.inFlight.Dec()
	settings := mod.Settings()
	settings.Expect = mb.Expectations()
	settings.Guard, settings.GuardKey = ex.backoff, mb.Name
	res, err := probe.Run(ctx, mb.NormalizedAddress(), settings)
	if err != nil {
		// The address was validated at load; what is left is the resolver
		// setup (no /etc/resolv.conf): a failed probe, not a bad request.
		res = &probe.Result{Mailbox: mb.NormalizedAddress(), Reason: err.Error()}
	}
	outcome := "failure"
	if res.Success {
		outcome = "success"
	}
	ex.probes.WithLabelValues(outcome).Inc()
	ex.history.add(mb.Name, moduleName, res)
	_ = level.Debug(ex.log.kit).Log("msg", "probe finished", "target", mb.Name, "module", moduleName, "success", res.Success, "hops", res.RedirectHops, "duration_seconds", res.Duration.Seconds(), "reason", res.Reason)
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

func (ex *exporter) writeDebug(w http.ResponseWriter, reg *prometheus.Registry, res *probe.Result, mod *config.Module) {
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

// sdTarget is one entry of Prometheus' HTTP service discovery format.
type sdTarget struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

func (ex *exporter) handleSD(w http.ResponseWriter, _ *http.Request) {
	cfg := ex.config()
	out := make([]sdTarget, 0, len(cfg.Mailboxes))
	for _, mb := range cfg.Mailboxes {
		labels := map[string]string{"__meta_autodiscover_module": mb.Module}
		for k, v := range mb.Labels {
			labels[k] = v
		}
		out = append(out, sdTarget{Targets: []string{mb.Name}, Labels: labels})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (ex *exporter) handleConfig(w http.ResponseWriter, _ *http.Request) {
	out, err := ex.config().Redacted()
	if err != nil {
		http.Error(w, "cannot render the configuration: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(out)
}

// handleBackoffReset sends credentials again for one mailbox (?target=)
// or all: a person checked the account.
func (ex *exporter) handleBackoffReset(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "reset takes POST", http.StatusMethodNotAllowed)
		return
	}
	target := r.URL.Query().Get("target")
	if target == "" {
		ex.backoff.ResetAll()
		_ = level.Info(ex.log.kit).Log("msg", "credential back-off reset for every mailbox")
		fmt.Fprintln(w, "credential back-off reset for every mailbox")
		return
	}
	if _, ok := ex.config().Mailbox(target); !ok {
		badRequest(w, "unknown target %q", target)
		return
	}
	ex.backoff.Reset(target)
	_ = level.Info(ex.log.kit).Log("msg", "credential back-off reset", "target", target)
	fmt.Fprintf(w, "credential back-off reset for %s\n", target)
}

func (ex *exporter) handleReload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "reload takes POST", http.StatusMethodNotAllowed)
		return
	}
	if err := ex.reload(); err != nil {
		http.Error(w, "reload rejected, the previous configuration stays in use:\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, "configuration reloaded")
}
