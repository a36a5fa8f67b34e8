package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/demo"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/logging"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/server"
)

// newTestServer is the exporter's HTTP service with the flags' defaults
// that matter here, logging at debug level to nowhere.
func newTestServer(t *testing.T, configPath string) *server.Server {
	t.Helper()
	s, err := server.New(server.Options{ConfigFile: configPath, TimeoutOffset: 500 * time.Millisecond, HistoryLimit: 10, BackoffInitial: 15 * time.Minute, BackoffMax: 4 * time.Hour, MaxConcurrent: 64}, logging.New(io.Discard, "logfmt", "debug").Kit)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	return s
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

func TestSuccessfulManualProbeResetsTheExportersBackoff(t *testing.T) {
	l := startLab(t)
	module := func(password string) map[string]*config.Module {
		return map[string]*config.Module{"m": l.basicModule(t, "frank@expiring.test", password)}
	}
	mailbox := &config.Mailbox{Name: "frank", Address: "frank@expiring.test", Module: "m"}
	s := newTestServer(t, writeLabConfig(t, module("stale"), mailbox))
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	get(t, s.Handler(), "/probe?target=frank", nil)
	if s.BackoffRemaining("frank") == 0 {
		t.Fatal("no back-off after a refused password")
	}
	// The admin fixed the password and checks it by hand.
	fixed := writeLabConfig(t, module(demo.Password), mailbox)
	var out, errb strings.Builder
	if code := run([]string{"--config.file=" + fixed, "probe", "--exporter.url=" + srv.URL, "frank"}, &out, &errb); code != 0 {
		t.Fatalf("manual probe = %d\n%s\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "Credential back-off of frank reset on") {
		t.Errorf("the manual probe did not report the reset:\n%s", out.String())
	}
	if got := s.BackoffRemaining("frank"); got != 0 {
		t.Errorf("back-off still %v after a successful manual probe", got)
	}
}
