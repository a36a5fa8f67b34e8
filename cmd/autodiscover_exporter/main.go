// Command autodiscover_exporter is a blackbox-style Prometheus exporter
// that runs the Exchange Autodiscover chain for configured mailboxes when
// Prometheus scrapes /probe?target=<mailbox name>.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log/level"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	autodiscoverexporter "github.com/autodiscover-exporter/autodiscover_exporter"
	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/demo"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/logging"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/server"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

const (
	exporterName = "autodiscover_exporter"
	// defaultPort is above the 10001–10026 block that Prometheus' default
	// port allocation page lists, and clear of 10024/10025, the content
	// filter ports of mail hosts.
	defaultPort = ":10057"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the parsed command line.
type options struct {
	configFile    string
	configCheck   bool
	timeoutOffset float64
	historyLimit  int
	logLevel      string
	logFormat     string
	web           *web.FlagConfig
	probeTarget   string
	probeAddress  string
	probeModule   string
	probeOutput   string
	loginModule   string
	demo          bool
	// demoNotes say what the demo left out on this machine.
	demoNotes []string
	// Account lockout protection and load shaping.
	backoffInitial time.Duration
	backoffMax     time.Duration
	backoffFile    string
	maxConcurrent  int
	exporterURL    string
	enablePprof    bool
	maxConns       int
	allowedHosts   []string
	// autoMemLimit sets GOMEMLIMIT from the container's memory limit.
	autoMemLimit      bool
	autoMemLimitRatio float64
}

func run(args []string, stdout, stderr io.Writer) int {
	app := kingpin.New(exporterName, "Runs the Exchange Autodiscover chain for configured mailboxes, step by step, and exports the result to Prometheus.")
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	var o options
	app.Flag("config.file", "Configuration file.").Default("autodiscover_exporter.yml").StringVar(&o.configFile)
	app.Flag("config.check", "Validate the configuration file, print the result and exit (0 valid, 1 invalid).").BoolVar(&o.configCheck)
	app.Flag("timeout-offset", "Seconds to subtract from Prometheus' scrape timeout to get the probe deadline.").Default("0.5").Float64Var(&o.timeoutOffset)
	app.Flag("history.limit", "How many recent probe results to keep for the landing page and /logs.").Default("200").IntVar(&o.historyLimit)
	app.Flag("log.level", "Only log messages with the given severity or above: debug, info, warn, error.").Default("info").EnumVar(&o.logLevel, "debug", "info", "warn", "error")
	app.Flag("log.format", "Output format of log messages: logfmt or json.").Default("logfmt").EnumVar(&o.logFormat, "logfmt", "json")
	app.Flag("auth.backoff", "After a server refused an account's credentials, withhold them this long from every mailbox using them (account lockout protection); doubles with every further refusal.").Default("15m").DurationVar(&o.backoffInitial)
	app.Flag("auth.backoff-max", "The longest the credential back-off grows to.").Default("4h").DurationVar(&o.backoffMax)
	app.Flag("auth.backoff-file", "Keep the credential back-off in this file, so that a restart does not offer a refused password again (written atomically, mode 0600).").StringVar(&o.backoffFile)
	app.Flag("probe.max-concurrent", "Most chains run at once; further scrapes wait for a slot until their own deadline.").Default("256").IntVar(&o.maxConcurrent)
	app.Flag("web.max-connections", "Most connections served at once; more wait in the listen queue.").Default("512").IntVar(&o.maxConns)
	app.Flag("web.allowed-hosts", "A host name (besides IP addresses, localhost and this machine's name) that /-/reload and /-/backoff/reset may be called by, e.g. the Kubernetes Service name; repeatable.").StringsVar(&o.allowedHosts)
	app.Flag("web.enable-pprof", "Serve Go's profiling endpoints under /debug/pprof/ (for finding where CPU and memory go; off by default).").BoolVar(&o.enablePprof)
	app.Flag("auto-gomemlimit", "Set the Go runtime's soft memory limit (GOMEMLIMIT) from the container's cgroup memory limit, as Prometheus does; a GOMEMLIMIT in the environment wins. --no-auto-gomemlimit leaves it alone.").Default("true").BoolVar(&o.autoMemLimit)
	app.Flag("auto-gomemlimit.ratio", "The share of the container's memory limit GOMEMLIMIT is set to, in (0, 1]; the rest is headroom for what the Go runtime does not count.").Default("0.9").Float64Var(&o.autoMemLimitRatio)
	app.Flag("demo", "Start a simulated Exchange estate on loopback and probe its healthy and broken mailboxes (ignores --config.file). Needs no credentials and no network.").BoolVar(&o.demo)
	o.web = kingpinflag.AddFlags(app, defaultPort)
	autodiscoverexporter.StampVersion()
	app.Version(version.Print(exporterName))
	app.HelpFlag.Short('h')
	serveCmd := app.Command("serve", "Serve /probe, /metrics and the landing page (the default).").Default()
	probeCmd := app.Command("probe", "Run the chain for one configured mailbox (or, with --address, any address of a domain paired with the module) now, print the result and exit 0 on success, 1 on failure, 2 on bad input (unknown mailbox or module, malformed address, invalid configuration: nothing is sent then).")
	probeCmd.Arg("mailbox", "Name of a configured mailbox (or give --address).").StringVar(&o.probeTarget)
	probeCmd.Flag("address", "Probe this e-mail address instead of a configured mailbox, with the settings of --module; credentials go only to the domains paired with the module (its mailboxes' domains and allowed_domains).").PlaceHolder("user@domain").StringVar(&o.probeAddress)
	probeCmd.Flag("module", "Module to probe with: required with --address unless the configuration has exactly one; with a mailbox name it replaces the mailbox's own module.").StringVar(&o.probeModule)
	probeCmd.Flag("output", "Output format: text, the ExRCA-style step log, or json, the whole result as one document for scripts (see the README for its keys).").Default("text").EnumVar(&o.probeOutput, "text", "json")
	probeCmd.Flag("exporter.url", "After a successful probe, reset the credential back-off of this mailbox on the exporter at this URL (e.g. http://localhost:10057); needs a mailbox name.").StringVar(&o.exporterURL)

	loginCmd := app.Command("login", "Sign a module's account in once (OAuth2 device authorization, for grant refresh_token): shows a code to enter in a browser and writes the module's refresh token file.")
	loginCmd.Arg("module", "Name of a configured module.").Required().StringVar(&o.loginModule)

	exited := false
	app.Terminate(func(int) { exited = true })
	cmd, err := app.Parse(args)
	if exited {
		return 0 // --help or --version was printed
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v (try --help)\n", exporterName, err)
		return 2
	}
	logger := logging.New(stderr, o.logFormat, o.logLevel)
	if o.demo {
		d, err := demo.Start()
		if err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			return 1
		}
		defer d.Close()
		o.configFile = d.ConfigPath
		o.demoNotes = d.Notes
		for _, n := range d.Notes {
			_ = level.Warn(logger.Kit).Log("msg", n)
		}
		_ = level.Warn(logger.Kit).Log("msg", "DEMO MODE: probing a simulated Exchange estate on loopback; nothing here is real", "mailboxes", len(d.Mailboxes), "config", d.ConfigPath)
	}

	switch {
	case o.configCheck:
		return checkConfig(o, stdout, stderr)
	case cmd == probeCmd.FullCommand():
		return probeOnce(o, stdout, stderr)
	case cmd == loginCmd.FullCommand():
		return login(o, stdout, stderr)
	case cmd == serveCmd.FullCommand():
		return serve(o, logger)
	}
	return 2
}

func checkConfig(o options, stdout, stderr io.Writer) int {
	cfg, err := config.Load(o.configFile)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	if o.web.WebConfigFile != nil && *o.web.WebConfigFile != "" {
		if err := web.Validate(*o.web.WebConfigFile); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", *o.web.WebConfigFile, err)
			return 1
		}
	}
	problems := 0
	for _, f := range cfg.Findings() {
		fmt.Fprintln(stderr, f)
		if f.Problem {
			problems++
		}
	}
	if problems > 0 {
		fmt.Fprintf(stderr, "%s: loads, but %d problem(s) will make probes fail\n", o.configFile, problems)
		return 1
	}
	fmt.Fprintf(stdout, "%s: valid, %d module(s), %d mailbox(es)\n", o.configFile, len(cfg.Modules), len(cfg.Mailboxes))
	return 0
}

// login runs the device authorization grant for one module in the
// terminal; Ctrl-C ends it and leaves the refresh token file as it was.
func login(o options, stdout, stderr io.Writer) int {
	cur, ok := loadOnce(o, stderr)
	if !ok {
		return 1
	}
	prober, ok := cur.Prober(o.loginModule)
	if !ok {
		fmt.Fprintf(stderr, "%q is not a configured module in %s\n", o.loginModule, o.configFile)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := prober.Login(ctx, stdout); err != nil {
		fmt.Fprintf(stderr, "login %s: %v\n", o.loginModule, err)
		return 1
	}
	return 0
}

// loadOnce loads the configuration for a command that runs once.
func loadOnce(o options, stderr io.Writer) (*server.Loaded, bool) {
	cur, err := server.Load(o.configFile, probe.Env{})
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
	}
	return cur, err == nil
}

// serve runs the HTTP service until SIGINT or SIGTERM; SIGHUP reloads the
// configuration.
func serve(o options, lg logging.Logger) int {
	if o.autoMemLimit {
		_, msg, err := setMemoryLimit(o.autoMemLimitRatio, lg.Slog)
		if err != nil {
			_ = level.Error(lg.Kit).Log("msg", "bad flag", "err", err)
			return 2
		}
		_ = level.Info(lg.Kit).Log("msg", msg)
	}
	srv, err := server.New(server.Options{
		ConfigFile:     o.configFile,
		TimeoutOffset:  time.Duration(o.timeoutOffset * float64(time.Second)),
		HistoryLimit:   o.historyLimit,
		BackoffInitial: o.backoffInitial,
		BackoffMax:     o.backoffMax,
		BackoffFile:    o.backoffFile,
		MaxConcurrent:  o.maxConcurrent,
		Demo:           o.demo,
		DemoNotes:      o.demoNotes,
		EnablePprof:    o.enablePprof,
		MaxConnections: o.maxConns,
		AllowedHosts:   o.allowedHosts,
	}, lg.Kit)
	if err != nil {
		_ = level.Error(lg.Kit).Log("msg", "cannot load the configuration", "file", o.configFile, "err", err)
		return 1
	}
	_ = level.Info(lg.Kit).Log("msg", "starting "+exporterName, "version", version.Info(), "build_context", version.BuildContext())
	cfg := srv.Config()
	_ = level.Info(lg.Kit).Log("msg", "configuration loaded", "file", o.configFile, "modules", len(cfg.Modules), "mailboxes", len(cfg.Mailboxes))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.demo {
		go srv.WarmUp(ctx, 30*time.Second)
	}
	// Registered before listening: an unhandled SIGHUP would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go reloadOn(ctx, hup, srv)
	if err := srv.ListenAndServe(ctx, o.web, lg.Slog); err != nil {
		_ = level.Error(lg.Kit).Log("msg", "cannot serve", "err", err)
		return 1
	}
	return 0
}

// reloadOn reloads the configuration on every signal of hup until ctx
// ends. A rejected file is logged by the server, which keeps the old one.
func reloadOn(ctx context.Context, hup <-chan os.Signal, srv *server.Server) {
	for {
		select {
		case <-hup:
			_ = srv.Reload()
		case <-ctx.Done():
			return
		}
	}
}
