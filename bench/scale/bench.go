package main

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/demo"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

const (
	benchPassword = "Bench-Passw0rd!"
	benchAccount  = "svc-monitor@bench.test"
)

// bench is the estate under test and the exporter that probes it.
type bench struct {
	o          options
	estate     *lab.Estate
	mailboxes  []lab.Mailbox
	dir        string
	configPath string
	base       string // the exporter's URL
	exporter   proc
}

// newBench builds N hybrid mailboxes over M domains, sharing one
// monitoring account, and writes the exporter's configuration for them.
func newBench(o options) (*bench, error) {
	e, err := lab.New()
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, estate: e}
	servers := map[string]*lab.Exchange{}
	for i := 0; i < o.mailboxes; i++ {
		domain, user := fmt.Sprintf("corp%d.test", i%o.domains), fmt.Sprintf("user%d", i)
		var mb lab.Mailbox
		var err error
		switch x := servers[domain]; {
		case o.scenario == "hybrid":
			mb, err = e.AddHybridMailbox(domain, user, benchAccount, benchPassword)
		case x == nil:
			mb, x, err = e.AddExchange(domain, user, benchPassword)
			if err == nil {
				x.Auth.AddAccount(benchAccount, benchPassword)
				servers[domain] = x
			}
		default:
			mb = lab.Mailbox{Address: user + "@" + domain}
			x.Auth.SetUser(mb.Address, lab.Reply{Settings: &lab.Settings{DisplayName: user, Server: "mail." + domain}})
		}
		if err != nil {
			b.close()
			return nil, err
		}
		b.mailboxes = append(b.mailboxes, mb)
	}
	if b.dir, err = os.MkdirTemp("", "autodiscover-bench-"); err != nil {
		b.close()
		return nil, err
	}
	if err := b.writeConfig(); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *bench) close() {
	b.estate.Close()
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

func (b *bench) caPath() string { return filepath.Join(b.dir, "ca.pem") }

func (b *bench) writeConfig() error {
	if err := os.WriteFile(b.caPath(), b.estate.CA.PEM(), 0o600); err != nil {
		return err
	}
	auth, err := demo.BasicAuth(b.dir, benchAccount, benchPassword)
	if err != nil {
		return err
	}
	m := demo.LabModule(b.estate, b.caPath())
	m.Timeout, m.StepTimeout = config.Duration(30*time.Second), config.Duration(5*time.Second)
	m.Auth = auth
	if b.o.scenario == "hybrid" {
		m.AllowedDomains = []string{lab.TenantSuffix, lab.CloudDomain}
	}
	for _, p := range strings.Split(b.o.endpoints, ",") {
		if p = strings.TrimSpace(p); p != "" {
			m.Endpoints = append(m.Endpoints, probe.EndpointProtocol(p))
			m.EndpointsScope = probe.ScopeExternal
		}
	}
	cfg := &config.Config{Modules: map[string]*config.Module{"hybrid": m}}
	for i, mb := range b.mailboxes {
		cfg.Mailboxes = append(cfg.Mailboxes, &config.Mailbox{Name: "mb-" + strconv.Itoa(i), Address: mb.Address, Module: "hybrid"})
	}
	b.configPath = filepath.Join(b.dir, "config.yml")
	return demo.WriteConfig(b.configPath, cfg)
}

func (b *bench) probeURL(i int) string { return b.base + "/probe?target=mb-" + strconv.Itoa(i) }

func (b *bench) probeURLs() []string {
	urls := make([]string, b.o.mailboxes)
	for i := range urls {
		urls[i] = b.probeURL(i)
	}
	return urls
}

// singleResult is the overhead of one probe above its injected critical
// path.
type singleResult struct {
	slack                     time.Duration
	raw, overheads, criticals []time.Duration
}

// singleProbes runs one probe at a time and measures its overhead above
// the injected critical path. The lab's sleeps overshoot a little (timer
// slack); that is measured too, so that it counts as network, not as the
// exporter's overhead.
func (b *bench) singleProbes() (singleResult, error) {
	var r singleResult
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		time.Sleep(b.o.overheadRT)
		r.slack += time.Since(t0) - b.o.overheadRT
	}
	r.slack /= 20
	b.estate.SetLatency(b.o.overheadRT)
	for run := 0; run < b.o.overheadRuns; run++ {
		before := len(b.estate.Requests())
		body, err := get(b.probeURL(0)+"&debug=true", 30*time.Second)
		if err != nil {
			return r, err
		}
		// Round trips the lab delays: one per DNS lookup (A and AAAA go in
		// parallel), per TLS handshake and per HTTP answer.
		lookups := strings.Count(body, "Attempting to resolve the host name") + strings.Count(body, "Attempting to locate SRV record")
		handshakes := strings.Count(body, "Attempting to obtain the SSL certificate")
		events := time.Duration(lookups + handshakes + len(b.estate.Requests()) - before)
		critical := events * b.o.overheadRT
		took := time.Duration(metric(body, "autodiscover_probe_duration_seconds") * float64(time.Second))
		r.raw = append(r.raw, took-critical)
		r.overheads = append(r.overheads, took-critical-events*r.slack)
		r.criticals = append(r.criticals, critical)
	}
	return r, nil
}

// cycleResult is every mailbox scraped once, spread over the interval.
type cycleResult struct {
	succeeded          int
	endpointFailures   int
	wall, cpu          time.Duration
	durations          []time.Duration
	mallocs, allocated float64
}

func (b *bench) cycle() cycleResult {
	b.estate.SetLatency(b.o.latency)
	if b.o.cpuProfile != "" {
		go func() {
			secs := strconv.Itoa(max(int(b.o.cycle/time.Second), 1))
			if prof, err := get(b.base+"/debug/pprof/profile?seconds="+secs, b.o.cycle+30*time.Second); err == nil {
				_ = os.WriteFile(b.o.cpuProfile, []byte(prof), 0o600)
			}
		}()
	}
	own0, _ := get(b.base+"/metrics", 5*time.Second)
	cpu0 := b.exporter.cpu()
	res := spread(b.probeURLs(), b.o.cycle, b.o.cycle)
	c := cycleResult{cpu: b.exporter.cpu() - cpu0}
	own1, _ := get(b.base+"/metrics", 5*time.Second)
	for _, r := range res {
		c.durations = append(c.durations, r.duration)
		c.wall = max(c.wall, r.done)
		if r.ok {
			c.succeeded++
		}
		if r.endpointFailed {
			c.endpointFailures++
		}
	}
	c.mallocs = metric(own1, "go_memstats_mallocs_total") - metric(own0, "go_memstats_mallocs_total")
	c.allocated = metric(own1, "go_memstats_alloc_bytes_total") - metric(own0, "go_memstats_alloc_bytes_total")
	return c
}

// burstResult is every chain at once, for the peak memory.
type burstResult struct {
	answered, succeeded int
	wall                time.Duration
	peakRSS             int64
}

func (b *bench) burst() burstResult {
	if b.o.heapProfile != "" {
		go func() {
			time.Sleep(250 * time.Millisecond)
			if prof, err := get(b.base+"/debug/pprof/heap", 10*time.Second); err == nil {
				_ = os.WriteFile(b.o.heapProfile, []byte(prof), 0o600)
			}
		}()
	}
	res := spread(b.probeURLs(), 0, 30*time.Second)
	out := burstResult{answered: len(res)}
	for _, r := range res {
		out.wall = max(out.wall, r.done)
		if r.ok {
			out.succeeded++
		}
	}
	out.peakRSS = b.exporter.peakRSS()
	return out
}

func printScale(o options, s singleResult, c cycleResult, b burstResult) {
	shape := "hybrid domains; 4 TLS hosts and 3 redirects per chain"
	if o.scenario == "onprem" {
		shape = "on-premises Exchange domains; Autodiscover on autodiscover.<domain>, no redirect"
	}
	fmt.Printf("\n## autodiscover_exporter at scale (%d mailboxes over %d %s; endpoints: %s)\n\n", o.mailboxes, o.domains, shape, cmp.Or(o.endpoints, "none"))
	fmt.Printf("| measure | value |\n|---|---|\n")
	fmt.Printf("| cycle: mailboxes spread over | %v, %v injected per DNS answer, TLS handshake and HTTP answer |\n", o.cycle, o.latency)
	fmt.Printf("| cycle: chains that returned settings | %d of %d |\n", c.succeeded, o.mailboxes)
	if o.endpoints != "" {
		fmt.Printf("| cycle: chains with a failing endpoint | %d of %d |\n", c.endpointFailures, o.mailboxes)
	}
	fmt.Printf("| cycle: wall time until the last answer | %v |\n", c.wall.Round(time.Millisecond))
	fmt.Printf("| probe duration p50 / p99 | %v / %v |\n", percentile(c.durations, 0.5).Round(time.Millisecond), percentile(c.durations, 0.99).Round(time.Millisecond))
	fmt.Printf("| exporter CPU per chain | %.2f ms |\n", float64(c.cpu.Microseconds())/1000/float64(o.mailboxes))
	fmt.Printf("| allocations per chain | %.0f (%.0f KiB) |\n", c.mallocs/float64(o.mailboxes), c.allocated/1024/float64(o.mailboxes))
	fmt.Printf("| burst: %d chains at once, answered / succeeded | %d / %d in %v |\n", o.mailboxes, b.answered, b.succeeded, b.wall.Round(time.Millisecond))
	fmt.Printf("| exporter peak RSS | %.1f MiB |\n", float64(b.peakRSS)/(1<<20))
	fmt.Printf("| single probe, %v per round trip: injected critical path | %v |\n", o.overheadRT, percentile(s.criticals, 0.5))
	crit := float64(max(percentile(s.criticals, 0.5), 1))
	fmt.Printf("| single probe: overhead above it, median (raw) | %v (%.1f %%) |\n", percentile(s.raw, 0.5).Round(100*time.Microsecond),
		100*float64(percentile(s.raw, 0.5))/crit)
	fmt.Printf("| single probe: overhead less the lab's timer slack (%v per delay) | %v (%.1f %%) |\n", s.slack.Round(time.Microsecond), percentile(s.overheads, 0.5).Round(100*time.Microsecond),
		100*float64(percentile(s.overheads, 0.5))/crit)
}
