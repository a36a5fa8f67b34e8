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
	"sync"
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

// prometheusUnderTest is one Prometheus release the tests run: the shipped
// configuration, rules and dashboard must work with the 2.x that Debian
// packages and with the 3.x that most users run.
type prometheusUnderTest struct {
	prometheus, promtool string
}

// forEachPrometheus runs f once per Prometheus release, as subtests named
// "debian" (the packaged 2.x) and "v3" (PROMETHEUS3_BINARY).
func forEachPrometheus(t *testing.T, f func(t *testing.T, p prometheusUnderTest)) {
	t.Helper()
	t.Run("debian", func(t *testing.T) {
		f(t, prometheusUnderTest{prometheus: requireTool(t, "prometheus"), promtool: requireTool(t, "promtool")})
	})
	t.Run("v3", func(t *testing.T) { f(t, requirePrometheus3(t)) })
}

// requirePrometheus3 finds the Prometheus 3 that scripts/build-prometheus3.sh
// builds. Debian has no 3.x package, so the binary is named by environment
// rather than looked up on PATH.
func requirePrometheus3(t *testing.T) prometheusUnderTest {
	t.Helper()
	path := os.Getenv("PROMETHEUS3_BINARY")
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("PROMETHEUS3_BINARY is not set, and CI must run this test against Prometheus 3 (.ci/run builds it)")
		}
		t.Skip("PROMETHEUS3_BINARY is not set: skipping Prometheus 3 (export PROMETHEUS3_BINARY=$(scripts/build-prometheus3.sh) to run it)")
	}
	// A path that is set but does not run is a mistake to show, not a
	// reason to skip, in CI or not.
	out, err := exec.Command(path, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("PROMETHEUS3_BINARY=%s: %v\n%s", path, err, out)
	}
	if !regexp.MustCompile(`^prometheus, version 3\.\d+`).Match(out) {
		t.Fatalf("PROMETHEUS3_BINARY=%s is not Prometheus 3.x: %s", path, strings.SplitN(string(out), "\n", 2)[0])
	}
	// Debian's promtool: building 3.x's as well would add minutes to CI,
	// and the 3.x server rejects at start any file it would reject.
	return prometheusUnderTest{prometheus: path, promtool: requireTool(t, "promtool")}
}

// runningPrometheus is a Prometheus server started by a test.
type runningPrometheus struct {
	promClient
	logs *lockedBuffer
	// stop ends it at once; it is also the test's cleanup.
	stop func()
}

// start runs Prometheus with cfgPath, its storage in dir, on a free
// loopback port until the test ends, and returns once it is ready. A file
// the release rejects ends it at once: that fails here with its log,
// rather than later as a query without data.
func (p prometheusUnderTest) start(t *testing.T, dir, cfgPath string) *runningPrometheus {
	t.Helper()
	runTool(t, dir, nil, p.promtool, "check", "config", cfgPath)
	addr := freeAddr(t)
	cmd := exec.Command(p.prometheus, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--web.enable-lifecycle")
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	stop := sync.OnceFunc(func() { _ = cmd.Process.Kill(); <-exited })
	t.Cleanup(stop)
	rp := &runningPrometheus{promClient: promClient{base: "http://" + addr}, logs: logs, stop: stop}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("%s exited before it was ready (%v):\n%s", p.prometheus, exitErr, logs.String())
		default:
		}
		if resp, err := http.Get(rp.base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return rp
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not ready within 60s:\n%s", p.prometheus, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
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
// checks every dashboard query and every alert against the demo: with
// Debian's Prometheus 2 and with Prometheus 3, the same checks for both.
func TestRealPrometheusRunsEveryDashboardQueryAndAlert(t *testing.T) {
	forEachPrometheus(t, testRealPrometheusRunsEveryDashboardQueryAndAlert)
}

func testRealPrometheusRunsEveryDashboardQueryAndAlert(t *testing.T, p prometheusUnderTest) {
	promtool := p.promtool
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
	prom := p.start(t, dir, cfgPath)

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
		"AutodiscoverProbeFailing":                  {"instance", "apponly-pat,expired-dave,expired-dora,longchain-judy,loop-erin,mapidown-mike,retired-gina,svcdown-sam"},
		"AutodiscoverExpectationFailed":             {"instance", "longchain-judy,mapidown-mike"},
		"AutodiscoverEndpointFailing":               {"host", "mail.mapidown.test"},
		"AutodiscoverFederationFailing":             {"instance", "svcdown-sam"},
		"AutodiscoverNodeFailing":                   {"host", "autodiscover.pool.test"},
		"AutodiscoverCertificateExpiringSoon":       {"host", "autodiscover.expiring.test"},
		"AutodiscoverCertificateExpiringCritical":   {"host", "autodiscover.lapsing.test,mail.endpoints.test"},
		"AutodiscoverCertificateExpired":            {"host", "autodiscover.expired.test"},
		"AutodiscoverRedirectHopsHigh":              {"instance", "longchain-judy"},
		"AutodiscoverRedirectHopsChanged":           {"instance", "migrating-hank"},
		"AutodiscoverEndpointChanged":               {"instance", "migrating-hank"},
		"AutodiscoverStepFailingWhileChainSucceeds": {"instance", "hybrid-alice,m365-bob,soap-sara"},
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
		t.Logf("prometheus logs:\n%s", prom.logs.String())
	}
}

// startDemoExporter runs the real binary with --demo.
func startDemoExporter(t *testing.T) *runningExporter {
	t.Helper()
	return startExporterArgs(t, "--demo")
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
