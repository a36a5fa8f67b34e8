// Command scale measures autodiscover_exporter at scale against the
// simulated estate with injected network latency, and blackbox_exporter
// probing the same HTTPS endpoints in the same run, so the two can be
// compared on this machine. bench/run.sh builds the binaries and runs it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

type options struct {
	exporter, blackbox  string
	mailboxes, domains  int
	latency, overheadRT time.Duration
	cycle               time.Duration
	overheadRuns        int
	heapProfile         string
}

func main() {
	var o options
	flag.StringVar(&o.exporter, "exporter", "", "path of the autodiscover_exporter binary")
	flag.StringVar(&o.blackbox, "blackbox", "", "path of blackbox_exporter (empty: skip the peer)")
	flag.IntVar(&o.mailboxes, "mailboxes", 1000, "mailboxes probed per cycle")
	flag.IntVar(&o.domains, "domains", 50, "hybrid domains the mailboxes are spread over")
	flag.DurationVar(&o.latency, "latency", 20*time.Millisecond, "latency injected into every DNS and HTTP answer during the cycle")
	flag.DurationVar(&o.overheadRT, "overhead-latency", 20*time.Millisecond, "latency per round trip for the single-probe overhead measurement")
	flag.IntVar(&o.overheadRuns, "overhead-runs", 10, "single probes for the overhead measurement")
	flag.StringVar(&o.heapProfile, "heap-profile", "", "write the exporter's heap profile, taken in the middle of the burst, to this file")
	flag.DurationVar(&o.cycle, "cycle", 10*time.Second, "scrape interval the mailboxes are spread over (and their scrape timeout)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

// proc reads a process's CPU time and peak RSS from /proc.
type proc struct{ pid int }

func (p proc) cpu() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return 0
	}
	// Fields after the ")" of the command name: utime is 14th, stime 15th.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // CLK_TCK is 100 on Linux
}

func (p proc) peakRSS() int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n * 1024
		}
	}
	return 0
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func start(ctx context.Context, bin string, args ...string) (*exec.Cmd, proc, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Env = append(os.Environ(), os.Getenv("EXPORTER_ENV"))
	if err := cmd.Start(); err != nil {
		return nil, proc{}, err
	}
	return cmd, proc{pid: cmd.Process.Pid}, nil
}

func waitHealthy(url string) error {
	for i := 0; i < 200; i++ {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s never answered", url)
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4096, MaxConnsPerHost: 0}}

func get(u string, timeout time.Duration) (string, error) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(timeout.Seconds(), 'f', 3, 64))
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func metric(body, name string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// scrapeResult is one /probe scrape as the load generator saw it.
type scrapeResult struct {
	ok       bool
	duration time.Duration // the chain's own duration, as exported
	done     time.Duration // from the cycle start to the answer
}

// spread scrapes every target once, evenly spread over cycle (as Prometheus
// spreads its targets), or all at once when cycle is 0.
func spread(urls []string, cycle, timeout time.Duration) []scrapeResult {
	out := make([]scrapeResult, len(urls))
	var wg sync.WaitGroup
	begin := time.Now()
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if cycle > 0 {
				time.Sleep(time.Until(begin.Add(time.Duration(i) * cycle / time.Duration(len(urls)))))
			}
			body, err := get(u, timeout)
			out[i] = scrapeResult{
				ok:       err == nil && metric(body, "autodiscover_probe_success") == 1,
				duration: time.Duration(metric(body, "autodiscover_probe_duration_seconds") * float64(time.Second)),
				done:     time.Since(begin),
			}
			if err == nil && strings.Contains(u, "module=hop") {
				out[i].ok = metric(body, "probe_success") >= 0
			}
		}()
	}
	wg.Wait()
	return out
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func run(o options) error {
	if o.exporter == "" {
		return errors.New("-exporter is required")
	}
	e, err := lab.New()
	if err != nil {
		return err
	}
	defer e.Close()
	const password = "Bench-Passw0rd!"
	const account = "svc-monitor@bench.test"
	var mailboxes []lab.Mailbox
	for i := 0; i < o.mailboxes; i++ {
		mb, err := e.AddHybridMailbox(fmt.Sprintf("corp%d.test", i%o.domains), fmt.Sprintf("user%d", i), account, password)
		if err != nil {
			return err
		}
		mailboxes = append(mailboxes, mb)
	}
	dir, err := os.MkdirTemp("", "autodiscover-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfgPath, err := writeConfig(dir, e, mailboxes, account, password)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := freePort()
	if err != nil {
		return err
	}
	cmd, exp, err := start(ctx, o.exporter, "--config.file="+cfgPath, "--web.listen-address="+addr, "--log.level=warn",
		"--probe.max-concurrent="+strconv.Itoa(max(o.mailboxes, 1)), "--history.limit=10", "--web.enable-pprof")
	if err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	base := "http://" + addr
	if err := waitHealthy(base + "/-/healthy"); err != nil {
		return err
	}
	probeURL := func(i int) string { return base + "/probe?target=mb-" + strconv.Itoa(i) }
	if _, err := get(probeURL(0), o.cycle); err != nil {
		return err
	}

	// 1. One probe at a time, overhead above the injected critical path.
	// The lab's sleeps overshoot a little (timer slack); measure how much,
	// so that it counts as network, not as the exporter's overhead.
	var slack time.Duration
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		time.Sleep(o.overheadRT)
		slack += time.Since(t0) - o.overheadRT
	}
	slack /= 20
	e.SetLatency(o.overheadRT)
	var rawOverheads []time.Duration
	var overheads, criticals []time.Duration
	for r := 0; r < o.overheadRuns; r++ {
		before := len(e.Requests())
		body, err := get(probeURL(0)+"&debug=true", 30*time.Second)
		if err != nil {
			return err
		}
		// Round trips the lab delays: one per DNS lookup (A and AAAA go in
		// parallel), per TLS handshake and per HTTP answer.
		lookups := strings.Count(body, "Attempting to resolve the host name") + strings.Count(body, "Attempting to locate SRV record")
		handshakes := strings.Count(body, "Attempting to obtain the SSL certificate")
		events := time.Duration(lookups + handshakes + len(e.Requests()) - before)
		critical := events * o.overheadRT
		took := time.Duration(metric(body, "autodiscover_probe_duration_seconds") * float64(time.Second))
		rawOverheads = append(rawOverheads, took-critical)
		overheads = append(overheads, took-critical-events*slack)
		criticals = append(criticals, critical)
	}

	// 2. The cycle: every mailbox once, spread over the interval.
	e.SetLatency(o.latency)
	urls := make([]string, o.mailboxes)
	for i := range urls {
		urls[i] = probeURL(i)
	}
	own0, _ := get(base+"/metrics", 5*time.Second)
	cpu0 := exp.cpu()
	res := spread(urls, o.cycle, o.cycle)
	cpuCycle := exp.cpu() - cpu0
	own1, _ := get(base+"/metrics", 5*time.Second)
	var durations []time.Duration
	var wall time.Duration
	succeeded := 0
	for _, r := range res {
		durations = append(durations, r.duration)
		wall = max(wall, r.done)
		if r.ok {
			succeeded++
		}
	}
	mallocs := metric(own1, "go_memstats_mallocs_total") - metric(own0, "go_memstats_mallocs_total")
	allocBytes := metric(own1, "go_memstats_alloc_bytes_total") - metric(own0, "go_memstats_alloc_bytes_total")

	// 3. A burst: every chain at once, for the peak memory.
	if o.heapProfile != "" {
		go func() {
			time.Sleep(250 * time.Millisecond)
			if prof, err := get(base+"/debug/pprof/heap", 10*time.Second); err == nil {
				_ = os.WriteFile(o.heapProfile, []byte(prof), 0o600)
			}
		}()
	}
	burst := spread(urls, 0, 30*time.Second)
	burstOK := 0
	var burstWall time.Duration
	for _, r := range burst {
		burstWall = max(burstWall, r.done)
		if r.ok {
			burstOK++
		}
	}
	peak := exp.peakRSS()

	fmt.Printf("\n## autodiscover_exporter at scale (%d mailboxes over %d hybrid domains; 4 TLS hosts and 3 redirects per chain)\n\n", o.mailboxes, o.domains)
	fmt.Printf("| measure | value |\n|---|---|\n")
	fmt.Printf("| cycle: mailboxes spread over | %v, %v injected per DNS answer, TLS handshake and HTTP answer |\n", o.cycle, o.latency)
	fmt.Printf("| cycle: chains that returned settings | %d of %d |\n", succeeded, o.mailboxes)
	fmt.Printf("| cycle: wall time until the last answer | %v |\n", wall.Round(time.Millisecond))
	fmt.Printf("| probe duration p50 / p99 | %v / %v |\n", percentile(durations, 0.5).Round(time.Millisecond), percentile(durations, 0.99).Round(time.Millisecond))
	fmt.Printf("| exporter CPU per chain | %.2f ms |\n", float64(cpuCycle.Microseconds())/1000/float64(o.mailboxes))
	fmt.Printf("| allocations per chain | %.0f (%.0f KiB) |\n", mallocs/float64(o.mailboxes), allocBytes/1024/float64(o.mailboxes))
	fmt.Printf("| burst: %d chains at once, answered / succeeded | %d / %d in %v |\n", o.mailboxes, len(burst), burstOK, burstWall.Round(time.Millisecond))
	fmt.Printf("| exporter peak RSS | %.1f MiB |\n", float64(peak)/(1<<20))
	fmt.Printf("| single probe, %v per round trip: injected critical path | %v |\n", o.overheadRT, percentile(criticals, 0.5))
	crit := float64(max(percentile(criticals, 0.5), 1))
	fmt.Printf("| single probe: overhead above it, median (raw) | %v (%.1f %%) |\n", percentile(rawOverheads, 0.5).Round(100*time.Microsecond),
		100*float64(percentile(rawOverheads, 0.5))/crit)
	fmt.Printf("| single probe: overhead less the lab's timer slack (%v per delay) | %v (%.1f %%) |\n", slack.Round(time.Microsecond), percentile(overheads, 0.5).Round(100*time.Microsecond),
		100*float64(percentile(overheads, 0.5))/crit)

	if o.blackbox == "" {
		fmt.Println("\nblackbox_exporter: not given, peer not measured")
		return nil
	}
	return runBlackbox(ctx, o, e, mailboxes[0], account, password, dir, cpuCycle)
}

func writeConfig(dir string, e *lab.Estate, mailboxes []lab.Mailbox, account, password string) (string, error) {
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), e.CA.PEM(), 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "password"), []byte(password+"\n"), 0o600); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("modules:\n  hybrid:\n    timeout: 30s\n    step_timeout: 5s\n")
	b.WriteString(e.ModuleYAML("ca.pem", "    "))
	fmt.Fprintf(&b, "    auth: {type: basic, username: %q, password_file: password}\n", account)
	fmt.Fprintf(&b, "    allowed_domains: [%s, %s]\n", lab.TenantSuffix, lab.CloudDomain)
	b.WriteString("mailboxes:\n")
	for i, mb := range mailboxes {
		fmt.Fprintf(&b, "  - {name: mb-%d, address: %s, module: hybrid}\n", i, mb.Address)
	}
	path := filepath.Join(dir, "config.yml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// hop is one HTTP exchange of the hybrid chain, as blackbox_exporter
// would be configured to check it.
type hop struct {
	name, host, scheme string
	port               int
	method             string
	auth               bool
}

// runBlackbox probes the chain's endpoints with blackbox_exporter, one http
// module per hop, as many requests as the cycle's chains made, and
// compares CPU.
func runBlackbox(ctx context.Context, o options, e *lab.Estate, mb lab.Mailbox, account, password, dir string, ourCPU time.Duration) error {
	domain := mb.Address[strings.IndexByte(mb.Address, '@')+1:]
	tenantHost := "autodiscover." + strings.SplitN(domain, ".", 2)[0] + "." + lab.TenantSuffix
	_ = tenantHost
	hops := []hop{
		{"hop_root", domain, "https", 443, "POST", false},
		{"hop_onprem", "autodiscover." + domain, "https", 443, "POST", true},
		{"hop_http_redirect", lab.CloudRedirectHost, "http", 80, "GET", false},
		{"hop_frontdoor", lab.CloudFrontDoor, "https", 443, "POST", true},
		{"hop_pod", lab.CloudPod, "https", 443, "POST", true},
	}
	body := strings.ReplaceAll(string(probe.BuildRequest(probe.SchemaOutlook, mb.Address)), "'", "''")
	var cfg strings.Builder
	cfg.WriteString("modules:\n")
	ct := e.ConnectTo()
	var targets []string
	for _, h := range hops {
		ip, err := e.IPOf(h.host)
		if err != nil {
			return err
		}
		dest := ct[net.JoinHostPort(ip, strconv.Itoa(h.port))]
		fmt.Fprintf(&cfg, "  %s:\n    prober: http\n    timeout: 10s\n    http:\n      method: %s\n      follow_redirects: false\n      preferred_ip_protocol: ip4\n      valid_status_codes: [200, 302]\n", h.name, h.method)
		fmt.Fprintf(&cfg, "      headers: {Host: %q, Content-Type: \"text/xml; charset=utf-8\"}\n", h.host)
		if h.method == "POST" {
			fmt.Fprintf(&cfg, "      body: '%s'\n", body)
		}
		if h.auth {
			fmt.Fprintf(&cfg, "      basic_auth: {username: %q, password: %q}\n", account, password)
		}
		if h.scheme == "https" {
			fmt.Fprintf(&cfg, "      tls_config: {ca_file: %q, server_name: %q}\n", filepath.Join(dir, "ca.pem"), h.host)
		}
		targets = append(targets, h.name+"|"+h.scheme+"://"+dest+"/autodiscover/autodiscover.xml")
	}
	cfgPath := filepath.Join(dir, "blackbox.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return err
	}
	addr, err := freePort()
	if err != nil {
		return err
	}
	cmd, bb, err := start(ctx, o.blackbox, "--config.file="+cfgPath, "--web.listen-address="+addr, "--log.level=warn")
	if err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := waitHealthy("http://" + addr + "/-/healthy"); err != nil {
		return err
	}
	var urls []string
	for i := 0; i < o.mailboxes; i++ {
		for _, t := range targets {
			module, target, _ := strings.Cut(t, "|")
			urls = append(urls, "http://"+addr+"/probe?"+url.Values{"module": {module}, "target": {target}}.Encode())
		}
	}
	// Check the modules once: every hop but the root (whose certificate
	// names another host) must succeed.
	for _, t := range targets {
		module, target, _ := strings.Cut(t, "|")
		b, err := get("http://"+addr+"/probe?"+url.Values{"module": {module}, "target": {target}}.Encode(), 10*time.Second)
		if err != nil {
			return err
		}
		if want := module != "hop_root"; (metric(b, "probe_success") == 1) != want {
			return fmt.Errorf("blackbox module %s: probe_success %v, want %v", module, metric(b, "probe_success"), want)
		}
	}
	cpu0 := bb.cpu()
	spread(urls, o.cycle, o.cycle)
	bbCPU := bb.cpu() - cpu0
	perRequest := float64(bbCPU.Microseconds()) / 1000 / float64(len(urls))
	ours := float64(ourCPU.Microseconds()) / 1000 / float64(o.mailboxes)
	fmt.Printf("\n## blackbox_exporter on the same endpoints (one http module per hop, %d hops per chain)\n\n", len(hops))
	fmt.Printf("| measure | value |\n|---|---|\n")
	fmt.Printf("| requests, spread over %v | %d |\n", o.cycle, len(urls))
	fmt.Printf("| blackbox CPU per HTTP(S) request | %.2f ms |\n", perRequest)
	fmt.Printf("| blackbox CPU for one chain's %d requests | %.2f ms |\n", len(hops), perRequest*float64(len(hops)))
	fmt.Printf("| CPU ratio: ours per chain ÷ blackbox per chain | %.2f |\n", ours/(perRequest*float64(len(hops))))
	return nil
}
