package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/demo"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// shardedEstate is an estate of several sites, each with its own
// monitoring account used by several mailboxes: the case the README's
// sharding rule exists for, since the credential back-off of an account
// only works if one exporter holds every use of it.
type shardedEstate struct {
	configPath string
	moduleOf   map[string]string // mailbox name → module
}

// The site names are chosen so that Prometheus' hashmod over two shards
// gives each shard three of them: with fewer on one side, the test would
// prove less.
var shardSites = []string{"hq", "branch", "north", "south", "east", "west"}

var shardUsers = []string{"ann", "ben", "cat"}

func startShardedEstate(t *testing.T) *shardedEstate {
	t.Helper()
	e, err := lab.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	dir := t.TempDir()
	caPath := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, e.CA.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	const password = "Shard-Passw0rd!"
	s := &shardedEstate{moduleOf: map[string]string{}}
	cfg := &config.Config{Modules: map[string]*config.Module{}}
	for _, site := range shardSites {
		domain := site + ".test"
		monitor, ad, err := e.AddOnPremises(domain, "monitor", password)
		if err != nil {
			t.Fatal(err)
		}
		m := demo.LabModule(e, caPath)
		m.Timeout = config.Duration(10 * time.Second)
		m.StepTimeout = config.Duration(2 * time.Second)
		m.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
		if m.Auth, err = demo.BasicAuth(dir, monitor.Username, password); err != nil {
			t.Fatal(err)
		}
		cfg.Modules[site] = m
		for _, user := range shardUsers {
			address := user + "@" + domain
			ad.SetUser(address, lab.Reply{Settings: &lab.Settings{DisplayName: user, Server: "mail." + domain}})
			name := site + "-" + user
			cfg.Mailboxes = append(cfg.Mailboxes, &config.Mailbox{Name: name, Address: address, Module: site})
			s.moduleOf[name] = site
		}
	}
	s.configPath = filepath.Join(dir, "sharded.yml")
	if err := demo.WriteConfig(s.configPath, cfg); err != nil {
		t.Fatal(err)
	}
	return s
}

// readmeShardRelabelling returns the relabel_configs of the README's
// sharding example, so that what is tested is what the README tells
// people to deploy and the two cannot drift apart.
func readmeShardRelabelling(t *testing.T) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(repoPath("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Kubernetes, and growing past one exporter\n")
	if !ok {
		t.Fatal(`README.md has no section "## Kubernetes, and growing past one exporter"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, block := range regexp.MustCompile("(?s)\n( *)```yaml\n(.*?)\n *```").FindAllStringSubmatch(section, -1) {
		if !strings.Contains(block[2], "action: hashmod") {
			continue
		}
		// The block sits in a list item: its lines carry the item's indent.
		lines := strings.Split(block[2], "\n")
		for i := range lines {
			lines[i] = strings.TrimPrefix(lines[i], block[1])
		}
		var snippet struct {
			RelabelConfigs []map[string]any `yaml:"relabel_configs"`
		}
		if err := yaml.Unmarshal([]byte(strings.Join(lines, "\n")), &snippet); err != nil {
			t.Fatalf("the README's sharding snippet is not YAML: %v\n%s", err, block[2])
		}
		if len(snippet.RelabelConfigs) == 0 {
			t.Fatalf("the README's sharding snippet has no relabel_configs:\n%s", block[2])
		}
		return snippet.RelabelConfigs
	}
	t.Fatal("the README's Kubernetes section has no yaml block with action: hashmod")
	return nil
}

// shardedRelabelling is the README's rules for shards exporters listening
// at hostPrefix+<shard>:port. Only the number of shards and the address
// template differ from the README: the template's host names exist in a
// cluster only.
func shardedRelabelling(t *testing.T, shards int, hostPrefix, port string) []map[string]any {
	t.Helper()
	rules := readmeShardRelabelling(t)
	var hashmod, route map[string]any
	for _, r := range rules {
		if r["action"] == "hashmod" {
			hashmod = r
		}
	}
	if hashmod == nil || hashmod["modulus"] == nil || hashmod["target_label"] == nil {
		t.Fatalf("the README's sharding snippet has no hashmod rule with modulus and target_label: %v", rules)
	}
	for _, r := range rules {
		if r["target_label"] == "__address__" && fmt.Sprint(r["source_labels"]) == fmt.Sprint([]any{hashmod["target_label"]}) {
			route = r
		}
	}
	if route == nil {
		t.Fatalf("the README's sharding snippet does not set __address__ from %v: %v", hashmod["target_label"], rules)
	}
	hashmod["modulus"] = shards
	route["replacement"] = hostPrefix + "${1}:" + port
	return rules
}

// portFreeOnEach finds one port free on every host, so that one address
// template, which varies the host by shard number only, reaches each
// exporter.
func portFreeOnEach(t *testing.T, hosts ...string) string {
	t.Helper()
	for attempt := 0; attempt < 50; attempt++ {
		first, err := net.Listen("tcp", net.JoinHostPort(hosts[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(first.Addr().String())
		held := []net.Listener{first}
		for _, h := range hosts[1:] {
			if l, err := net.Listen("tcp", net.JoinHostPort(h, port)); err == nil {
				held = append(held, l)
			}
		}
		for _, l := range held {
			l.Close()
		}
		if len(held) == len(hosts) {
			return port
		}
	}
	t.Fatalf("no port free on all of %v", hosts)
	return ""
}

// probesLogged reads an exporter's debug log: how often it ran the chain
// of each mailbox, and under which module.
func probesLogged(logs string) (count map[string]int, module map[string]string, total int) {
	count, module = map[string]int{}, map[string]string{}
	target := regexp.MustCompile(`\btarget=(\S+)`)
	mod := regexp.MustCompile(`\bmodule=(\S+)`)
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `msg="probe finished"`) {
			continue
		}
		total++
		name := target.FindStringSubmatch(line)
		if name == nil {
			continue
		}
		count[name[1]]++
		if m := mod.FindStringSubmatch(line); m != nil {
			module[name[1]] = m[1]
		}
	}
	return count, module, total
}

// probesCounted is autodiscover_exporter_probes_total of an exporter by
// result.
func probesCounted(t *testing.T, re *runningExporter) map[string]float64 {
	t.Helper()
	_, body := re.get(t, "/metrics")
	out := map[string]float64{}
	if mf := parseMetrics(t, body)["autodiscover_exporter_probes_total"]; mf != nil {
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if lp.GetName() == "result" {
					out[lp.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// sampleValue is the value of an instant-vector sample (JSON sends it as
// a string).
func sampleValue(r promResult) float64 {
	if len(r.Value) != 2 {
		return 0
	}
	s, _ := r.Value[1].(string)
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestTwoShardedExportersProbeEveryMailboxExactlyOnce runs two exporters
// with one configuration and a real Prometheus with the README's hashmod
// relabelling, and checks the rule the README states: every mailbox is
// probed by exactly one exporter, and every mailbox of a module (so every
// use of its account) by the same one. Prometheus' series say where it
// sent each scrape; each exporter's own log and counters say what it ran.
func TestTwoShardedExportersProbeEveryMailboxExactlyOnce(t *testing.T) {
	forEachPrometheus(t, testTwoShardedExportersProbeEveryMailboxExactlyOnce)
}

func testTwoShardedExportersProbeEveryMailboxExactlyOnce(t *testing.T, p prometheusUnderTest) {
	estate := startShardedEstate(t)

	// Shard n listens at 127.0.0.1<n>, all on one port: the README's
	// template names shards by number, and so does this one. The helper
	// adds a listener of its own on 127.0.0.1, which the test reads
	// through; Prometheus knows only the shard addresses.
	const hostPrefix = "127.0.0.1"
	hosts := []string{hostPrefix + "0", hostPrefix + "1"}
	port := portFreeOnEach(t, hosts...)
	var shardAddrs []string
	exporters := map[string]*runningExporter{}
	for _, h := range hosts {
		addr := net.JoinHostPort(h, port)
		shardAddrs = append(shardAddrs, addr)
		exporters[addr] = startExporterArgs(t, "--config.file="+estate.configPath, "--web.listen-address="+addr)
	}

	// The exporter label is the test's addition: after relabelling,
	// __address__ is where the scrape goes, and it is not kept otherwise.
	relabel := append(shardedRelabelling(t, len(hosts), hostPrefix, port),
		map[string]any{"source_labels": []string{"__address__"}, "target_label": "exporter"})
	promCfg := map[string]any{
		"global": map[string]any{"scrape_interval": "3s", "scrape_timeout": "3s"},
		"scrape_configs": []any{map[string]any{
			"job_name":     "autodiscover",
			"metrics_path": "/probe",
			// Every shard serves the same /sd (one configuration): any one
			// is the whole list, as the Service would give it.
			"http_sd_configs": []any{map[string]any{"url": "http://" + shardAddrs[0] + "/sd", "refresh_interval": "3s"}},
			"relabel_configs": relabel,
		}},
	}
	cfgText, err := yaml.Marshal(promCfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, cfgText, 0o600); err != nil {
		t.Fatal(err)
	}
	prom := p.start(t, dir, cfgPath)
	defer func() {
		if t.Failed() {
			t.Logf("prometheus.yml:\n%s\nprometheus logs:\n%s", cfgText, prom.logs.String())
			for addr, re := range exporters {
				t.Logf("exporter %s logs:\n%.6000s", addr, re.logs.String())
			}
		}
	}()

	// routed is every (mailbox, exporter) pair Prometheus ever scraped in
	// this run, with how many scrapes: a mailbox sent to both shards even
	// once shows as two series.
	routed := func() (map[string]map[string]float64, error) {
		res, err := prom.query(`count_over_time(up{job="autodiscover"}[1h])`)
		if err != nil {
			return nil, err
		}
		out := map[string]map[string]float64{}
		for _, r := range res {
			inst := r.Metric["instance"]
			if out[inst] == nil {
				out[inst] = map[string]float64{}
			}
			out[inst][r.Metric["exporter"]] += sampleValue(r)
		}
		return out, nil
	}
	const scrapes = 3
	deadline := time.Now().Add(90 * time.Second)
	var byMailbox map[string]map[string]float64
	for {
		byMailbox, err = routed()
		enough := err == nil
		for name := range estate.moduleOf {
			var total float64
			for _, n := range byMailbox[name] {
				total += n
			}
			enough = enough && total >= scrapes
		}
		if enough || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Healthy chains on every shard: each ran with its module's account.
	var failing []string
	for deadline := time.Now().Add(90 * time.Second); ; {
		res, err := prom.query(`autodiscover_probe_success{job="autodiscover"} == 1`)
		succeeded := map[string]bool{}
		for _, r := range res {
			succeeded[r.Metric["instance"]] = true
		}
		failing = failing[:0]
		for _, name := range sortedKeys(estate.moduleOf) {
			if !succeeded[name] {
				failing = append(failing, name)
			}
		}
		if (err == nil && len(failing) == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(failing) > 0 {
		t.Errorf("no successful probe of %v", failing)
	}
	// Nothing reaches the exporters from here on, so that their logs and
	// counters hold still while they are compared.
	prom.stop()

	// Prometheus' view: each mailbox at exactly one shard, each module at
	// one shard, both shards used.
	shardOf := map[string]string{}
	for name := range estate.moduleOf {
		at := sortedKeys(byMailbox[name])
		switch {
		case len(at) == 0:
			t.Errorf("Prometheus never scraped %s", name)
		case len(at) > 1:
			t.Errorf("Prometheus scraped %s at %d exporters: %v", name, len(at), byMailbox[name])
		case !slices.Contains(shardAddrs, at[0]):
			t.Errorf("Prometheus scraped %s at %q, not one of the shards %v", name, at[0], shardAddrs)
		default:
			shardOf[name] = at[0]
		}
	}
	for inst := range byMailbox {
		if _, ok := estate.moduleOf[inst]; !ok {
			t.Errorf("Prometheus scraped %q, which is no configured mailbox", inst)
		}
	}
	moduleShards := map[string]map[string]bool{}
	for name, shard := range shardOf {
		mod := estate.moduleOf[name]
		if moduleShards[mod] == nil {
			moduleShards[mod] = map[string]bool{}
		}
		moduleShards[mod][shard] = true
	}
	modulesAt := map[string][]string{}
	for mod, at := range moduleShards {
		if len(at) != 1 {
			t.Errorf("the mailboxes of module %s went to %d exporters: %v", mod, len(at), sortedKeys(at))
		}
		for shard := range at {
			modulesAt[shard] = append(modulesAt[shard], mod)
		}
	}
	for _, shard := range shardAddrs {
		sort.Strings(modulesAt[shard])
		t.Logf("shard %s: modules %v", shard, modulesAt[shard])
		if len(modulesAt[shard]) == 0 {
			t.Errorf("no module went to %s: the sharding is not exercised (pick other site names)", shard)
		}
	}

	// The exporters' own view. A chain that was running when Prometheus
	// stopped still finishes, counts and logs: wait for counter and log to
	// agree.
	logged := map[string]map[string]int{}
	for _, addr := range shardAddrs {
		re := exporters[addr]
		var counted map[string]float64
		var total int
		var modules map[string]string
		settle := time.Now().Add(30 * time.Second)
		for {
			counted = probesCounted(t, re)
			logged[addr], modules, total = probesLogged(re.logs.String())
			if counted["success"]+counted["failure"] == float64(total) || time.Now().After(settle) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if got := counted["success"] + counted["failure"]; got != float64(total) {
			t.Errorf("exporter %s counted %v probes and logged %d", addr, got, total)
		}
		if counted["bad_request"] != 0 {
			t.Errorf("exporter %s answered %v probe requests for unknown targets", addr, counted["bad_request"])
		}
		for name, mod := range modules {
			if estate.moduleOf[name] != mod {
				t.Errorf("exporter %s probed %s with module %q, configured %q", addr, name, mod, estate.moduleOf[name])
			}
		}
	}
	for _, name := range sortedKeys(estate.moduleOf) {
		var ranAt []string
		for _, addr := range shardAddrs {
			if logged[addr][name] > 0 {
				ranAt = append(ranAt, fmt.Sprintf("%s (%d probes)", addr, logged[addr][name]))
			}
		}
		switch {
		case len(ranAt) != 1:
			t.Errorf("mailbox %s (module %s) was probed by %d exporters: %v", name, estate.moduleOf[name], len(ranAt), ranAt)
		case shardOf[name] != "" && logged[shardOf[name]][name] == 0:
			t.Errorf("Prometheus sent %s to %s, but %s ran it", name, shardOf[name], ranAt[0])
		}
	}
	for _, addr := range shardAddrs {
		for name := range logged[addr] {
			if _, ok := estate.moduleOf[name]; !ok {
				t.Errorf("exporter %s probed %q, which is no configured mailbox", addr, name)
			}
		}
	}
}
