package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/demo"
)

func newTestServer(t *testing.T, configPath string) (*Server, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	s, err := New(Options{ConfigFile: configPath, TimeoutOffset: 500 * time.Millisecond, HistoryLimit: 10, BackoffInitial: 15 * time.Minute, BackoffMax: 4 * time.Hour, MaxConcurrent: 64}, testLogger(&logs, level.AllowDebug()))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, &logs
}

func get(t *testing.T, h http.Handler, target string, header http.Header) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestProbeTimeoutFollowsTheScrapeHeader(t *testing.T) {
	cases := []struct {
		name   string
		header string
		module time.Duration
		want   time.Duration
		err    bool
	}{
		{"no header uses 120s minus offset", "", 0, 119500 * time.Millisecond, false},
		{"header minus offset", "15", 0, 14500 * time.Millisecond, false},
		{"module timeout caps it", "15", 5 * time.Second, 5 * time.Second, false},
		{"module timeout larger than the scrape", "10", 30 * time.Second, 9500 * time.Millisecond, false},
		{"zero header means none", "0", 30 * time.Second, 30 * time.Second, false},
		{"garbage header", "soon", 0, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/probe", nil)
			if tc.header != "" {
				r.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", tc.header)
			}
			got, err := probeTimeout(r, tc.module, 500*time.Millisecond)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("probeTimeout = %v, %v; want %v, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestBadProbeRequestsGet400WithAReason(t *testing.T) {
	l := startLab(t)
	s, _ := newTestServer(t, l.configPath)
	h := s.routes()
	cases := []struct {
		url    string
		reason string
	}{
		{"/probe", "target parameter is missing"},
		{"/probe?target=alice@contoso.test", "only mailboxes named in the configuration are probed"},
		{"/probe?target=nobody", `unknown target "nobody"`},
		{"/probe?target=hybrid-alice&module=nope", `unknown module "nope"`},
	}
	for _, tc := range cases {
		code, body := get(t, h, tc.url, nil)
		if code != http.StatusBadRequest || !strings.Contains(body, tc.reason) {
			t.Errorf("GET %s = %d %q; want 400 with %q", tc.url, code, body, tc.reason)
		}
	}
	if n := len(l.estate.Requests()); n != 0 || l.estate.DNSQueries() != 0 {
		t.Errorf("bad requests caused traffic: %d requests, %d DNS queries", n, l.estate.DNSQueries())
	}
	_, metrics := get(t, h, "/metrics", nil)
	if !strings.Contains(metrics, `autodiscover_exporter_probes_total{result="bad_request"} 4`) {
		t.Errorf("bad requests not counted:\n%s", metrics)
	}
}

func TestProbeDebugShowsStepLogMetricsAndModuleWithoutSecret(t *testing.T) {
	l := startLab(t)
	s, logs := newTestServer(t, l.configPath)
	h := s.routes()
	code, body := get(t, h, "/probe?target=hybrid-alice&debug=true", nil)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	for _, want := range []string{"Step log:", "Attempting to resolve the host name contoso.mail.onmicrosoft.test in DNS … FAILED (nxdomain)", "Metrics that would have been returned:", "autodiscover_probe_success 1", "autodiscover_redirect_hops 3", "Module configuration (secrets hidden):", "password_file"} {
		if !strings.Contains(body, want) {
			t.Errorf("debug output lacks %q", want)
		}
	}
	for _, out := range []string{body, logs.String()} {
		if strings.Contains(out, l.password) {
			t.Error("the password appears in debug output or logs")
		}
	}
}

func TestSDListsEveryMailboxWithItsLabels(t *testing.T) {
	l := startLab(t)
	s, _ := newTestServer(t, l.configPath)
	code, body := get(t, s.routes(), "/sd", nil)
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	var groups []sdTarget
	if err := json.Unmarshal([]byte(body), &groups); err != nil {
		t.Fatalf("not SD JSON: %v\n%s", err, body)
	}
	got := map[string]map[string]string{}
	for _, g := range groups {
		if len(g.Targets) != 1 {
			t.Fatalf("group with %d targets", len(g.Targets))
		}
		got[g.Targets[0]] = g.Labels
	}
	if len(got) != demo.MailboxCount() || got["hybrid-alice"]["site"] != "hq" || got["hybrid-alice"]["__meta_autodiscover_module"] != "demo-hybrid-alice" || got["m365-bob"]["site"] != "cloud" {
		t.Errorf("SD targets %v", got)
	}
	if strings.Contains(body, "@") {
		t.Errorf("an address leaked into /sd: %s", body)
	}
}

func TestConfigPageHidesThePassword(t *testing.T) {
	l := startLab(t)
	s, _ := newTestServer(t, l.configPath)
	code, body := get(t, s.routes(), "/config", nil)
	if code != http.StatusOK || !strings.Contains(body, "hybrid-alice") {
		t.Fatalf("status %d: %s", code, body)
	}
	if strings.Contains(body, l.password) {
		t.Error("/config shows the password")
	}
}

func TestLandingPageAndLogsShowTheLastResult(t *testing.T) {
	l := startLab(t)
	s, _ := newTestServer(t, l.configPath)
	h := s.routes()
	_, page := get(t, h, "/", nil)
	if !strings.Contains(page, "hybrid-alice") || !strings.Contains(page, "not probed yet") {
		t.Fatalf("landing page before any probe:\n%s", page)
	}
	get(t, h, "/probe?target=hybrid-alice", nil)
	_, page = get(t, h, "/", nil)
	if !strings.Contains(page, `class="ok">success`) || !strings.Contains(page, "logs?id=1") {
		t.Errorf("landing page after a probe lacks the result:\n%s", page)
	}
	code, log := get(t, h, "/logs?id=1", nil)
	if code != http.StatusOK || !strings.Contains(log, "Testing Autodiscover for alice@contoso.test.") {
		t.Errorf("/logs?id=1 = %d %q", code, log)
	}
	if code, _ := get(t, h, "/logs?id=99", nil); code != http.StatusNotFound {
		t.Errorf("unknown id: %d, want 404", code)
	}
	if code, _ := get(t, h, "/nothing-here", nil); code != http.StatusNotFound {
		t.Errorf("unknown path: %d, want 404", code)
	}
}

func TestReloadKeepsTheOldConfigWhenTheNewOneIsBroken(t *testing.T) {
	l := startLab(t)
	s, logs := newTestServer(t, l.configPath)
	h := s.routes()
	good, err := os.ReadFile(l.configPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.configPath, []byte("modules: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	req := actionRequest("/-/reload")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "demo.yml:1: invalid YAML") {
		t.Fatalf("reload of a broken file = %d %q; want 500 naming the file", rec.Code, rec.Body.String())
	}
	if code, _ := get(t, h, "/probe?target=srv-carol", nil); code != http.StatusOK {
		t.Errorf("the old configuration stopped serving: %d", code)
	}
	_, metrics := get(t, h, "/metrics", nil)
	if !strings.Contains(metrics, "autodiscover_exporter_config_last_reload_successful 0") {
		t.Errorf("reload gauge not 0 after a rejected reload")
	}
	if !strings.Contains(logs.String(), "configuration reload rejected") {
		t.Errorf("the rejection was not logged: %s", logs.String())
	}
	if code, _ := get(t, h, "/-/reload", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload = %d, want 405", code)
	}
	// A good file again: accepted, gauge back to 1.
	if err := os.WriteFile(l.configPath, good, 0o600); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, actionRequest("/-/reload"))
	_, metrics = get(t, h, "/metrics", nil)
	if rec.Code != http.StatusOK || !strings.Contains(metrics, "autodiscover_exporter_config_last_reload_successful 1") {
		t.Errorf("good reload = %d; gauge not back to 1", rec.Code)
	}
}

func TestMetricsPassTheLint(t *testing.T) {
	l := startLab(t)
	s, _ := newTestServer(t, l.configPath)
	h := s.routes()
	for _, u := range []string{"/probe?target=hybrid-alice", "/probe?target=m365-bob", "/probe?target=srv-carol", "/metrics"} {
		_, body := get(t, h, u, nil)
		problems, err := promlint.New(strings.NewReader(body)).Lint()
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s: %s", u, p.Metric, p.Text)
		}
	}
}

func TestLandingPageShowsWhatTheDemoLeftOut(t *testing.T) {
	l := startLab(t)
	var logs bytes.Buffer
	note := `The SCP mailboxes are left out: slapd is not installed here <missing>.`
	s, err := New(Options{ConfigFile: l.configPath, HistoryLimit: 10, MaxConcurrent: 4, Demo: true, DemoNotes: []string{note}}, testLogger(&logs, level.AllowDebug()))
	if err != nil {
		t.Fatal(err)
	}
	_, body := get(t, s.routes(), "/", nil)
	if !strings.Contains(body, `<p class="demo-note">The SCP mailboxes are left out: slapd is not installed here &lt;missing&gt;.</p>`) {
		t.Errorf("the landing page does not carry the demo's note, escaped:\n%.2000s", body)
	}
	plain, _ := newTestServer(t, l.configPath)
	if _, body := get(t, plain.routes(), "/", nil); strings.Contains(body, "demo-note") {
		t.Error("a note shows outside demo mode")
	}
}

// A probe's answer is a few kilobytes for a scraper on the same network:
// compressing it cost more CPU than the rest of serving it.
func TestProbeAnswersAreNotCompressed(t *testing.T) {
	l := startLab(t)
	s, _ := newTestServer(t, l.configPath)
	req := httptest.NewRequest(http.MethodGet, "/probe?target=hybrid-alice", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	s.routes().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Encoding") != "" || !strings.Contains(rec.Body.String(), "autodiscover_probe_success") {
		t.Errorf("status %d, Content-Encoding %q; want a plain text answer", rec.Code, rec.Header().Get("Content-Encoding"))
	}
}
