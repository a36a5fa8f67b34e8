package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/demo"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/server"
)

// requireTool finds an external program. Outside CI a missing one skips
// the test with a message; under CI=true it fails, because CI installs it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed, and CI must run this test (.ci/run installs it)", name)
	}
	t.Skipf("%s is not installed: skipping (apt-get install prometheus chromium to run it)", name)
	return ""
}

func repoPath(parts ...string) string {
	return filepath.Join(append([]string{"..", ".."}, parts...)...)
}

func runTool(t *testing.T, dir string, stdin []byte, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolChecksTheShippedFiles(t *testing.T) {
	promtool := requireTool(t, "promtool")
	dir := repoPath("deploy", "prometheus")
	runTool(t, dir, nil, promtool, "check", "config", "prometheus.yml")
	runTool(t, dir, nil, promtool, "check", "rules", "alerts.yml")
	out := runTool(t, dir, nil, promtool, "test", "rules", "alerts_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules: %s", out)
	}
	// Every alert of alerts.yml has at least one unit test.
	rules := alertRules(t)
	tests, err := os.ReadFile(filepath.Join(dir, "alerts_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for name := range rules {
		if !strings.Contains(string(tests), "alertname: "+name+"\n") {
			t.Errorf("alert %s has no promtool unit test", name)
		}
	}
}

// alertRules reads alert name → expression from deploy/prometheus/alerts.yml.
func alertRules(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(repoPath("deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r.Expr
		}
	}
	return out
}

// dashboardQueries reads every panel query of the Grafana dashboard.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(repoPath("deploy", "grafana", "autodiscover_exporter.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	out := map[string]string{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out[p.Title+" / "+tg.RefID] = tg.Expr
		}
	}
	if len(out) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	return out
}

// promClient queries a Prometheus server's HTTP API.
type promClient struct{ base string }

type promResult struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

func (p promClient) query(q string) ([]promResult, error) {
	resp, err := http.Get(p.base + "/api/v1/query?" + url.Values{"query": {q}}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, body.Error)
	}
	var out []promResult
	if body.Data.ResultType == "scalar" {
		return []promResult{{}}, nil
	}
	if err := json.Unmarshal(body.Data.Result, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// waitFor polls a query until it returns at least one series.
func (p promClient) waitFor(t *testing.T, q string, timeout time.Duration) []promResult {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		res, err := p.query(q)
		if err == nil && len(res) > 0 {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("no data for %s within %v (last error %v)", q, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func labelSet(res []promResult, label string) string {
	var vals []string
	seen := map[string]bool{}
	for _, r := range res {
		if v := r.Metric[label]; !seen[v] {
			seen[v] = true
			vals = append(vals, v)
		}
	}
	sort.Strings(vals)
	return strings.Join(vals, ",")
}

// TestRealPrometheusRunsEveryDashboardQueryAndAlert starts the exporter in
// demo mode and Prometheus with the shipped prometheus.yml (rewritten only
// for addresses, paths and intervals, so that it runs in seconds), then
// checks every dashboard query and every alert against the demo.
func TestRealPrometheusRunsEveryDashboardQueryAndAlert(t *testing.T) {
	prometheus := requireTool(t, "prometheus")
	promtool := requireTool(t, "promtool")

	re := startDemoExporter(t)
	exporterHost := strings.TrimPrefix(re.base, "http://")

	shipped, err := os.ReadFile(repoPath("deploy", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	alertsPath, err := filepath.Abs(repoPath("deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(shipped)
	cfg = strings.ReplaceAll(cfg, "autodiscover-exporter:10057", exporterHost)
	cfg = strings.ReplaceAll(cfg, "  - alerts.yml", "  - "+alertsPath)
	cfg = regexp.MustCompile(`(scrape_interval|evaluation_interval|scrape_timeout|refresh_interval): \S+`).ReplaceAllString(cfg, "$1: 2s")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	runTool(t, dir, nil, promtool, "check", "config", cfgPath)

	promAddr := freeAddr(t)
	cmd := exec.Command(prometheus, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr, "--web.enable-lifecycle")
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	prom := promClient{base: "http://" + promAddr}

	// Every demo mailbox scraped, the changing one at least twice.
	deadline := 60 * time.Second
	prom.waitFor(t, fmt.Sprintf(`count(autodiscover_probe_success) == %d`, demo.MailboxCount()), deadline)
	prom.waitFor(t, `changes(autodiscover_redirect_hops{instance="migrating-hank"}[1h]) > 0`, deadline)
	prom.waitFor(t, `count(rate(autodiscover_exporter_probes_total[30s])) > 0`, deadline)

	vars := strings.NewReplacer(`$job`, "autodiscover", `$instance`, ".*", `$exporter_job`, "autodiscover_exporter", `$__rate_interval`, "30s")
	for name, expr := range dashboardQueries(t) {
		res, err := prom.query(vars.Replace(expr))
		if err != nil {
			t.Errorf("panel %s: %v", name, err)
			continue
		}
		if len(res) == 0 {
			t.Errorf("panel %s returns no data: %s", name, expr)
		}
	}

	// Every alert expression matches in the demo; the reload alert needs a
	// broken reload first.
	rules := alertRules(t)
	demoConfig := regexp.MustCompile(`config=(\S+demo\.yml)`).FindStringSubmatch(re.logs.String())
	if demoConfig == nil {
		t.Fatalf("the demo config path is not in the log:\n%s", re.logs.String())
	}
	if err := os.WriteFile(demoConfig[1], []byte("modules: {broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reload, _ := http.NewRequest(http.MethodPost, re.base+"/-/reload", nil)
	reload.Header.Set(server.ActionHeader, "1")
	resp, err := http.DefaultClient.Do(reload)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("broken reload answered %d", resp.StatusCode)
	}
	prom.waitFor(t, `autodiscover_exporter_config_last_reload_successful == 0`, deadline)
	for name, expr := range rules {
		prom.waitFor(t, expr, deadline)
		// Prometheus' own rule evaluation activated it (pending until its for: passes).
		prom.waitFor(t, `ALERTS{alertname="`+name+`"}`, deadline)
	}

	// The broken demo mailboxes fire exactly the expected alerts.
	want := map[string]struct{ label, values string }{
		"AutodiscoverProbeFailing":                  {"instance", "apponly-pat,expired-dave,expired-dora,longchain-judy,loop-erin,retired-gina"},
		"AutodiscoverExpectationFailed":             {"instance", "longchain-judy"},
		"AutodiscoverNodeFailing":                   {"host", "autodiscover.pool.test"},
		"AutodiscoverCertificateExpiringSoon":       {"host", "autodiscover.expiring.test"},
		"AutodiscoverCertificateExpiringCritical":   {"host", "autodiscover.lapsing.test"},
		"AutodiscoverCertificateExpired":            {"host", "autodiscover.expired.test"},
		"AutodiscoverRedirectHopsHigh":              {"instance", "longchain-judy"},
		"AutodiscoverRedirectHopsChanged":           {"instance", "migrating-hank"},
		"AutodiscoverEndpointChanged":               {"instance", "migrating-hank"},
		"AutodiscoverStepFailingWhileChainSucceeds": {"instance", "hybrid-alice,m365-bob"},
	}
	for name, w := range want {
		res, err := prom.query(`ALERTS{alertname="` + name + `"}`)
		if err != nil {
			t.Fatal(err)
		}
		if got := labelSet(res, w.label); got != w.values {
			t.Errorf("%s active for %s=%s, want %s", name, w.label, got, w.values)
		}
	}

	// promtool check metrics on live output.
	for _, path := range []string{"/metrics", "/probe?target=hybrid-alice", "/probe?target=loop-erin"} {
		_, body := re.get(t, path)
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics %s: %v\n%s", path, err, out)
		}
	}
	if t.Failed() {
		t.Logf("prometheus logs:\n%s", logs.String())
	}
}

// startDemoExporter runs the real binary with --demo.
func startDemoExporter(t *testing.T) *runningExporter {
	t.Helper()
	return startExporterArgs(t, "--demo")
}

func TestBrowserRendersTheLandingPageAndAStepLog(t *testing.T) {
	chromium := requireTool(t, "chromium")
	re := startDemoExporter(t)
	dump := func(path string) string {
		profile := t.TempDir()
		cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir="+profile, "--dump-dom", re.base+path)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %s: %v\n%s", path, err, errb.String())
		}
		return out.String()
	}
	// The warm-up probes every mailbox at start; give it a moment.
	deadline := time.Now().Add(20 * time.Second)
	var page string
	for {
		page = dump("/")
		if strings.Count(page, `<td class="ok">success`)+strings.Count(page, `<td class="fail">failure`) >= demo.MailboxCount() || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, want := range []string{`id="demo-banner"`, `<table id="mailboxes">`, "<td>hybrid-alice</td>", "<td>expired-dave</td>", "<td>migrating-hank</td>", `class="fail">failure: redirect loop`} {
		if !strings.Contains(page, want) {
			t.Errorf("the rendered landing page lacks %q", want)
		}
	}
	if n := strings.Count(page, "last step log</a>"); n != demo.MailboxCount() {
		t.Errorf("%d step-log links in the mailbox table, want %d", n, demo.MailboxCount())
	}
	log := dump("/logs?target=hybrid-alice")
	if !strings.Contains(log, "Testing Autodiscover for alice@contoso.test.") || !strings.Contains(log, "Attempting to contact the Autodiscover service using the HTTP redirect method") {
		t.Errorf("the rendered step log lacks the expected lines:\n%.2000s", log)
	}
	if strings.Contains(page+log, demo.Password) {
		t.Error("the password is on a page")
	}
}

func TestKubernetesConfigMapHoldsAValidConfig(t *testing.T) {
	data, err := os.ReadFile(repoPath("deploy", "kubernetes", "configmap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(data, &cm); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "probe-password"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The Secret is mounted at this path in the Deployment.
	cfgText := strings.ReplaceAll(cm.Data["config.yml"], "/etc/autodiscover_exporter/secrets/probe-password", filepath.Join(dir, "probe-password"))
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"--config.file=" + path, "--config.check"}, &out, &errb); code != 0 {
		t.Fatalf("the ConfigMap's config.yml is invalid: %s", errb.String())
	}
	deployment, err := os.ReadFile(repoPath("deploy", "kubernetes", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mountPath: /etc/autodiscover_exporter/secrets", "containerPort: 10057", "path: /-/healthy", "requests:"} {
		if !strings.Contains(string(deployment), want) {
			t.Errorf("deployment.yaml lacks %q", want)
		}
	}
}
