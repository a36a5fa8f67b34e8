package server

import (
	"cmp"
	"net/http"
	"strings"
	"sync"
	"time"

	kitlog "github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// Options are the settings of a Server that the command line gives.
type Options struct {
	// ConfigFile is read by New and again by every Reload.
	ConfigFile string
	// TimeoutOffset is subtracted from the scrape timeout Prometheus
	// announces to get the probe deadline.
	TimeoutOffset time.Duration
	// HistoryLimit bounds the recent results kept for the landing page
	// and /logs (at least 1).
	HistoryLimit int
	// BackoffInitial and BackoffMax shape the credential back-off after
	// a refusal (account lockout protection).
	BackoffInitial, BackoffMax time.Duration
	// BackoffFile, when set, keeps the back-offs across restarts.
	BackoffFile string
	// MaxConcurrent bounds the chains running at once (at least 1).
	MaxConcurrent int
	// Demo marks a run against the simulated estate: pages say so.
	Demo bool
	// DemoNotes are sentences the landing page shows in demo mode: what
	// the demo left out on this machine, and why.
	DemoNotes []string
	// EnablePprof serves Go's profiling endpoints under /debug/pprof/.
	EnablePprof bool
	// IdleTimeout closes idle keep-alive connections (0: DefaultIdleTimeout).
	IdleTimeout time.Duration
	// MaxConnections caps the connections served at once (0:
	// DefaultMaxConnections).
	MaxConnections int
	// AllowedHosts are the host names besides IP addresses, localhost and
	// the machine's name that state-changing requests may be sent to
	// (a Kubernetes Service name, a reverse proxy's name).
	AllowedHosts []string
}

// Server holds the live configuration, the exporter's own metrics and the
// history of recent probes. Everything reachable from a request goes
// through it.
type Server struct {
	configFile     string
	timeoutOffset  time.Duration
	demo           bool
	demoNotes      []string
	pprof          bool
	idleTimeout    time.Duration
	maxConnections int
	allowedHosts   []string
	logger         kitlog.Logger

	mu  sync.RWMutex
	cur *Loaded

	history *history
	// backoff withholds credentials after refusals (lockout protection).
	backoff *probe.Backoff
	// tokens keeps the refresh tokens across reloads, so that a probe of
	// the old configuration and one of the new never redeem one twice.
	tokens *probe.TokenStore
	// slots bounds the chains running at once.
	slots chan struct{}
	// recent serves min_interval mailboxes their last result.
	recent  *resultCache
	metrics *metrics
}

// New loads the configuration file and builds a server for it; a broken
// file is an error, with the file and line in it.
func New(o Options, logger kitlog.Logger) (*Server, error) {
	backoff := probe.NewBackoff(o.BackoffInitial, o.BackoffMax)
	if o.BackoffFile != "" {
		err := backoff.Persist(o.BackoffFile, func(err error) {
			_ = level.Error(logger).Log("msg", "the credential back-off could not be saved; it stays in force in memory", "file", o.BackoffFile, "err", err)
		})
		if err != nil {
			return nil, err
		}
	}
	tokens := probe.NewTokenStore()
	cur, err := Load(o.ConfigFile, probe.Env{Guard: backoff, Tokens: tokens})
	if err != nil {
		return nil, err
	}
	logFindings(logger, cur.Config)
	return &Server{
		configFile:     o.ConfigFile,
		timeoutOffset:  o.TimeoutOffset,
		demo:           o.Demo,
		demoNotes:      o.DemoNotes,
		pprof:          o.EnablePprof,
		idleTimeout:    cmp.Or(o.IdleTimeout, DefaultIdleTimeout),
		maxConnections: cmp.Or(o.MaxConnections, DefaultMaxConnections),
		allowedHosts:   lowerAll(o.AllowedHosts),
		logger:         logger,
		cur:            cur,
		history:        newHistory(o.HistoryLimit),
		backoff:        backoff,
		tokens:         tokens,
		slots:          make(chan struct{}, max(o.MaxConcurrent, 1)),
		recent:         newResultCache(),
		metrics:        newMetrics(),
	}, nil
}

// Config is the configuration in use now.
func (s *Server) Config() *config.Config { return s.loaded().Config }

// loaded is the configuration in use now with its probers.
func (s *Server) loaded() *Loaded {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cur
}

// Reload reads the configuration file again. A broken file is rejected and
// the running configuration stays; either way the outcome is logged and
// shows in the reload metrics.
func (s *Server) Reload() error {
	cur, err := Load(s.configFile, probe.Env{Guard: s.backoff, Tokens: s.tokens})
	if err != nil {
		s.metrics.reloadSuccessful.Set(0)
		_ = level.Error(s.logger).Log("msg", "configuration reload rejected; the previous configuration stays in use", "file", s.configFile, "err", err)
		return err
	}
	cfg := cur.Config
	s.mu.Lock()
	old := s.cur
	s.cur = cur
	s.mu.Unlock()
	s.history.forget(func(target string) bool { _, ok := cfg.Mailbox(target); return ok })
	// A fixed password (or another account) is worth one more try; an
	// unchanged one stays withheld, or a reload every minute would lock
	// the account out as surely as no back-off at all.
	fresh := cur.credentials()
	for key, fp := range old.credentials() {
		if fresh[key] != fp {
			s.backoff.Reset(key)
		}
	}
	s.recent.clear()
	// Probes in flight keep the old probers until they end, at most a
	// module timeout; then the old Kerberos clients stop renewing tickets
	// with what may be an old password.
	time.AfterFunc(old.longestTimeout(), old.close)
	s.metrics.reloadSuccessful.Set(1)
	s.metrics.reloadSuccessTime.SetToCurrentTime()
	_ = level.Info(s.logger).Log("msg", "configuration reloaded", "file", s.configFile, "modules", len(cfg.Modules), "mailboxes", len(cfg.Mailboxes))
	logFindings(s.logger, cfg)
	return nil
}

// logFindings tells the operator, at every load, what only they can fix
// (a login that has not run) and what will not work where it is likely
// used.
func logFindings(logger kitlog.Logger, cfg *config.Config) {
	for _, f := range cfg.Findings() {
		_ = level.Warn(logger).Log("msg", f.Message, "module", f.Module, "problem", f.Problem)
	}
}

// BackoffRemaining is how much longer the credentials of the mailbox
// named target are withheld; 0 when they are sent.
func (s *Server) BackoffRemaining(target string) time.Duration {
	key, ok := s.loaded().credentialKey(target)
	if !ok || key == "" {
		return 0
	}
	return s.backoff.Remaining(key)
}

// Handler serves every endpoint of the exporter, and the profiling ones
// when Options.EnablePprof asked for them.
func (s *Server) Handler() http.Handler {
	h := s.routes()
	if s.pprof {
		h = withPprof(h)
	}
	return h
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", s.handleLanding)
	mux.HandleFunc("/probe", s.handleProbe)
	mux.Handle("/metrics", s.metrics.handler())
	mux.HandleFunc("/sd", s.handleSD)
	mux.HandleFunc("/logs", s.handleLogs)
	mux.HandleFunc("/mailbox", s.handleMailbox)
	mux.HandleFunc("/config", s.handleConfig)
	mux.HandleFunc("/-/healthy", handleHealthy)
	mux.HandleFunc("/-/reload", s.sameOrigin(s.handleReload))
	mux.HandleFunc("/-/backoff/reset", s.sameOrigin(s.handleBackoffReset))
	return mux
}

func lowerAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.TrimSuffix(strings.ToLower(n), ".")
	}
	return out
}

func levelWarn(s *Server, keyvals ...any) error { return level.Warn(s.logger).Log(keyvals...) }
