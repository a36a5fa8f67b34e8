package server

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log/level"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/demo"
)

func authorizedRequests(l *labEstate, host string) int {
	n := 0
	for _, r := range l.estate.RequestsTo(host) {
		if r.Authorization != "" {
			n++
		}
	}
	return n
}

// actionRequest is a state-changing POST as curl or the probe command
// sends it to a local exporter.
func actionRequest(target string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, target, nil)
	req.Host = "localhost:10057"
	req.Header.Set(ActionHeader, "1")
	return req
}

func post(t *testing.T, h http.Handler, target string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, actionRequest(target))
	return rec.Code, rec.Body.String()
}

func TestStalePasswordBacksOffAndIsResetByAPersonOrAReload(t *testing.T) {
	l := startLab(t)
	stale := l.basicModule(t, "frank@expiring.test", "stale-password")
	wrong := stale.Auth.PasswordFile
	path := writeLabConfig(t,
		map[string]*config.Module{"stale": stale},
		&config.Mailbox{Name: "stale-frank", Address: "frank@expiring.test", Module: "stale"})
	s, logs := newTestServer(t, path)
	h := s.routes()
	host := "autodiscover.expiring.test"

	_, body := get(t, h, "/probe?target=stale-frank&debug=true", nil)
	if !strings.Contains(body, "FAILED (auth_failed)") || !strings.Contains(body, "autodiscover_auth_backoff_seconds 900") {
		t.Fatalf("first probe: want auth_failed and a 15m back-off:\n%s", body)
	}
	sent := authorizedRequests(l, host)
	for i := 0; i < 3; i++ {
		_, body = get(t, h, "/probe?target=stale-frank&debug=true", nil)
	}
	if !strings.Contains(body, "FAILED (auth_backoff): credentials withheld until") {
		t.Errorf("later probes do not say credentials are withheld:\n%s", body)
	}
	if authorizedRequests(l, host) != sent {
		t.Errorf("credentials were sent %d more times during the back-off", authorizedRequests(l, host)-sent)
	}

	if code, out := post(t, h, "/-/backoff/reset?target=stale-frank"); code != http.StatusOK {
		t.Fatalf("reset = %d %s", code, out)
	}
	get(t, h, "/probe?target=stale-frank", nil)
	if authorizedRequests(l, host) != sent+1 {
		t.Errorf("after a reset credentials were not tried once more")
	}
	if code, _ := post(t, h, "/-/backoff/reset?target=nobody"); code != http.StatusBadRequest {
		t.Errorf("reset of an unknown target = %d, want 400", code)
	}

	// Fix the password file and reload: the back-off is gone at once.
	if err := os.WriteFile(wrong, []byte(demo.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := post(t, h, "/-/reload"); code != http.StatusOK {
		t.Fatalf("reload = %d %s", code, out)
	}
	_, body = get(t, h, "/probe?target=stale-frank", nil)
	if !strings.Contains(body, "autodiscover_probe_success 1") || !strings.Contains(body, "autodiscover_auth_backoff_seconds 0") {
		t.Errorf("after the reload with the right password:\n%s", body)
	}
	if strings.Contains(logs.String(), "stale-password") || strings.Contains(logs.String(), demo.Password) {
		t.Error("a password is in the logs")
	}
}

func TestMinIntervalServesTheLastResultToAnHAPair(t *testing.T) {
	l := startLab(t)
	path := writeLabConfig(t,
		map[string]*config.Module{"srv": l.basicModule(t, "frank@expiring.test", demo.Password)},
		&config.Mailbox{Name: "frank", Address: "frank@expiring.test", Module: "srv", MinInterval: config.Duration(time.Hour)})
	s, _ := newTestServer(t, path)
	h := s.routes()
	_, first := get(t, h, "/probe?target=frank", nil)
	if !strings.Contains(first, "autodiscover_probe_result_age_seconds 0\n") || !strings.Contains(first, "autodiscover_probe_success 1") {
		t.Fatalf("first scrape:\n%s", first)
	}
	requests := len(l.estate.RequestsTo("autodiscover.expiring.test"))
	time.Sleep(20 * time.Millisecond)
	_, second := get(t, h, "/probe?target=frank", nil)
	if strings.Contains(second, "autodiscover_probe_result_age_seconds 0\n") || !strings.Contains(second, "autodiscover_probe_success 1") {
		t.Errorf("second scrape did not serve the cached result with its age:\n%s", second)
	}
	if n := len(l.estate.RequestsTo("autodiscover.expiring.test")); n != requests {
		t.Errorf("the second scrape reached Exchange (%d requests, want %d)", n, requests)
	}
}

func TestProbeSlotsBoundConcurrencyWithinTheDeadline(t *testing.T) {
	l := startLab(t)
	if err := l.estate.BlackHole("autodiscover.slow.test", 443); err != nil {
		t.Fatal(err)
	}
	path := writeLabConfig(t, map[string]*config.Module{"slow": l.labModule()}, &config.Mailbox{Name: "slow", Address: "s@slow.test", Module: "slow"})
	var logs strings.Builder
	s, err := New(Options{ConfigFile: path, TimeoutOffset: 500 * time.Millisecond, HistoryLimit: 10, MaxConcurrent: 1}, testLogger(&logs, level.AllowInfo()))
	if err != nil {
		t.Fatal(err)
	}
	h := s.routes()
	// The first scrape holds the only slot for 2.5s on a black hole; the
	// second, with a 1s deadline, must give up waiting.
	first := make(chan string, 1)
	go func() {
		_, body := get(t, h, "/probe?target=slow&debug=true", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"3"}})
		first <- body
	}()
	time.Sleep(100 * time.Millisecond)
	_, second := get(t, h, "/probe?target=slow&debug=true", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"1.5"}})
	if !strings.Contains(second, "while waiting for one of 1 probe slots") || !strings.Contains(second, "autodiscover_probe_success 0") {
		t.Errorf("the second scrape should have waited out its deadline:\n%s", second)
	}
	if body := <-first; !strings.Contains(body, "FAILED (timeout)") {
		t.Errorf("the first scrape should have run the chain into the black hole:\n%s", body)
	}
	_, metrics := get(t, h, "/metrics", nil)
	if !strings.Contains(metrics, "autodiscover_exporter_probes_waiting 0") || !strings.Contains(metrics, "autodiscover_exporter_probes_in_flight 0") {
		t.Errorf("gauges not back to 0:\n%s", metrics)
	}
}
