package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// notification is what Alertmanager's webhook receiver gets (version 4).
type notification struct {
	Arrived           time.Time         `json:"arrived"`
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	Alerts            []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

// webhookReceiver records every notification Alertmanager sends it.
type webhookReceiver struct {
	mu   sync.Mutex
	got  []notification
	path []string
}

func (wr *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var n notification
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&n); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n.Arrived = time.Now()
	wr.mu.Lock()
	wr.got = append(wr.got, n)
	wr.path = append(wr.path, r.URL.Path)
	wr.mu.Unlock()
}

// groups returns the notifications of alertname whose group labels
// include want.
func (wr *webhookReceiver) groups(alertname string, want map[string]string) []notification {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	var out []notification
	for _, n := range wr.got {
		if n.GroupLabels["alertname"] != alertname {
			continue
		}
		match := true
		for k, v := range want {
			if n.GroupLabels[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, n)
		}
	}
	return out
}

func (wr *webhookReceiver) dump() string {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	b, _ := json.MarshalIndent(wr.got, "", "  ")
	return string(b)
}

// TestAlertmanagerSendsEachWhyOnce runs the shipped alert rules in a real
// Prometheus against --demo and the shipped routing in Debian's
// Alertmanager, with a webhook receiver of the test's own. Only timings
// are shortened; grouping, inhibition and the annotations are the shipped
// ones. Every for: becomes 10s, so that each alert fires once every
// mailbox has been scraped (its annotation counts them all), and
// group_wait 15s: Alertmanager flushes a group at once when its alert
// started more than group_wait ago, and an inhibiting alert of the same
// evaluation must be in before any group flushes.
func TestAlertmanagerSendsEachWhyOnce(t *testing.T) {
	// Debian's Prometheus only: the rules are the ones the real-Prometheus
	// test already runs on 3.x, and this test is the slow one.
	prometheus := prometheusUnderTest{prometheus: requireTool(t, "prometheus"), promtool: requireTool(t, "promtool")}
	alertmanager := requireTool(t, "prometheus-alertmanager")
	amtool := requireTool(t, "amtool")
	dir := t.TempDir()

	receiver := &webhookReceiver{}
	hook := httptest.NewServer(receiver)
	t.Cleanup(hook.Close)

	shippedAM, err := os.ReadFile(repoPath("deploy", "alertmanager", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	amCfg := strings.ReplaceAll(string(shippedAM), "http://alert-receiver.example.internal:9095", hook.URL)
	amCfg = regexp.MustCompile(`group_wait: \S+`).ReplaceAllString(amCfg, "group_wait: 15s")
	amCfgPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(amCfgPath, []byte(amCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	runTool(t, dir, nil, amtool, "check-config", amCfgPath)
	amAddr := freeAddr(t)
	// No cluster listener: it would bind every interface.
	am := exec.Command(alertmanager, "--config.file="+amCfgPath, "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")
	amLogs := &lockedBuffer{}
	am.Stdout, am.Stderr = amLogs, amLogs
	if err := am.Start(); err != nil {
		t.Fatal(err)
	}
	amStopped := false
	t.Cleanup(func() {
		if !amStopped {
			_ = am.Process.Kill()
			_ = am.Wait()
		}
	})

	re := startDemoExporter(t)
	shippedRules, err := os.ReadFile(repoPath("deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	rules := regexp.MustCompile(`(?m)^(\s+)for: \S+`).ReplaceAllString(string(shippedRules), "${1}for: 10s")
	rulesPath := filepath.Join(dir, "alerts.yml")
	if err := os.WriteFile(rulesPath, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	shippedProm, err := os.ReadFile(repoPath("deploy", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	promCfg := strings.ReplaceAll(string(shippedProm), "autodiscover-exporter:10057", strings.TrimPrefix(re.base, "http://"))
	promCfg = strings.ReplaceAll(promCfg, "  - alerts.yml", "  - "+rulesPath)
	promCfg = regexp.MustCompile(`(scrape_interval|evaluation_interval|scrape_timeout|refresh_interval): \S+`).ReplaceAllString(promCfg, "$1: 2s")
	promCfg += "\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['" + amAddr + "']\n"
	promCfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promCfgPath, []byte(promCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	prom := prometheus.start(t, dir, promCfgPath)
	defer func() {
		if t.Failed() {
			t.Logf("notifications:\n%s\nalertmanager logs:\n%s\nprometheus logs:\n%.4000s", receiver.dump(), amLogs.String(), prom.logs.String())
		}
	}()

	waitForGroup := func(alertname string, labels map[string]string) notification {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			if got := receiver.groups(alertname, labels); len(got) > 0 {
				return got[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("no notification of %s %v arrived", alertname, labels)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}

	// The expired certificate both expired-dave and expired-dora reach: one
	// notification, one alert, counting both mailboxes.
	expired := waitForGroup("AutodiscoverCertificateExpired", map[string]string{"host": "autodiscover.expired.test"})
	if len(expired.Alerts) != 1 {
		t.Errorf("the expired certificate came as %d alerts, want 1", len(expired.Alerts))
	}
	desc := expired.Alerts[0].Annotations["description"]
	for _, want := range []string{"2 mailbox(es)", "expired-dave, expired-dora"} {
		if !strings.Contains(desc, want) {
			t.Errorf("the expired-certificate description %q lacks %q", desc, want)
		}
	}
	if s := expired.Alerts[0].Annotations["summary"]; !regexp.MustCompile(`expired 3\.\d days ago`).MatchString(s) {
		t.Errorf("summary %q does not say how long ago it expired", s)
	}
	critical := waitForGroup("AutodiscoverCertificateExpiringCritical", map[string]string{"host": "autodiscover.lapsing.test"})
	if d := critical.Alerts[0].Annotations["description"]; !strings.Contains(d, "1 mailbox(es)") {
		t.Errorf("the expiring-certificate description %q does not count its mailbox", d)
	}

	// The broken redirect says why: the decisive failure is the loop.
	loop := waitForGroup("AutodiscoverProbeFailing", map[string]string{"class": "loop"})
	if len(loop.Alerts) != 1 || loop.Alerts[0].Labels["instance"] != "loop-erin" || loop.Alerts[0].Labels["step"] != "redirect" {
		t.Errorf("the loop notification holds %+v, want loop-erin's redirect step", loop.Alerts)
	}
	if s := loop.Alerts[0].Annotations["summary"]; !strings.Contains(s, "redirect on ") || !strings.Contains(s, "(loop)") {
		t.Errorf("the loop summary %q does not say why", s)
	}

	// Wait for one more group, so that every alert of the first evaluations
	// has had its group_wait, then check what must not have arrived.
	waitForGroup("AutodiscoverProbeFailing", map[string]string{"class": "autodiscover_error"})
	time.Sleep(5 * time.Second)
	if got := receiver.groups("AutodiscoverCertificateExpired", map[string]string{"host": "autodiscover.expired.test"}); len(got) != 1 {
		t.Errorf("%d notifications for the one expired certificate, want 1", len(got))
	}
	if got := receiver.groups("AutodiscoverProbeFailing", map[string]string{"class": "expired"}); len(got) != 0 {
		t.Errorf("the probes failing on the expired certificate were not inhibited by it: %+v", got)
	}
	if got := receiver.groups("AutodiscoverExpectationFailed", nil); len(got) != 0 {
		t.Errorf("longchain-judy's failing probe did not inhibit its expectation alert: %+v", got)
	}
	if got := receiver.groups("AutodiscoverRedirectHopsHigh", nil); len(got) != 0 {
		t.Errorf("longchain-judy's failing probe did not inhibit its redirect-hops alert: %+v", got)
	}

	// The rules never let one host's certificate be expiring and expired at
	// once, but rules get edited: sent both directly, only the expired one
	// is notified.
	postAlerts(t, "http://"+amAddr, `[
		{"labels": {"alertname": "AutodiscoverCertificateExpired", "host": "both.example", "severity": "critical"}},
		{"labels": {"alertname": "AutodiscoverCertificateExpiringSoon", "host": "both.example", "severity": "warning"}},
		{"labels": {"alertname": "AutodiscoverCertificateExpiringSoon", "host": "alone.example", "severity": "warning"}}]`)
	waitForGroup("AutodiscoverCertificateExpired", map[string]string{"host": "both.example"})
	waitForGroup("AutodiscoverCertificateExpiringSoon", map[string]string{"host": "alone.example"})
	if got := receiver.groups("AutodiscoverCertificateExpiringSoon", map[string]string{"host": "both.example"}); len(got) != 0 {
		t.Errorf("the expired certificate did not inhibit its expiring alert: %+v", got)
	}

	// An Alertmanager that is down changes nothing for the exporter.
	_ = am.Process.Kill()
	_ = am.Wait()
	amStopped = true
	if code, body := re.get(t, "/probe?target=hybrid-alice"); code != http.StatusOK || !strings.Contains(body, "autodiscover_probe_success 1") {
		t.Errorf("with Alertmanager down, /probe answered %d:\n%.500s", code, body)
	}
}

// postAlerts hands alerts to Alertmanager as Prometheus would.
func postAlerts(t *testing.T, base, body string) {
	t.Helper()
	resp, err := http.Post(base+"/api/v2/alerts", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("posting alerts: HTTP %d", resp.StatusCode)
	}
}
