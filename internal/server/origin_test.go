package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-kit/log/level"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
)

// The state-changing endpoints act only on same-origin requests: a
// foreign Origin or Referer, a Host that is not one of the exporter's
// names (DNS rebinding) and a request without the custom header (a plain
// HTML form) are refused with 403, and nothing changes.
func TestStateChangingEndpointsActOnlyOnSameOriginRequests(t *testing.T) {
	l := startLab(t)
	path := writeLabConfig(t, map[string]*config.Module{"stale": l.basicModule(t, "frank@expiring.test", "stale-password")},
		&config.Mailbox{Name: "frank", Address: "frank@expiring.test", Module: "stale"})
	s, err := New(Options{ConfigFile: path, HistoryLimit: 10, MaxConcurrent: 4, AllowedHosts: []string{"Autodiscover-Exporter.Monitoring.svc"}}, testLogger(new(discard), level.AllowInfo()))
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	get(t, h, "/probe?target=frank", nil)
	if s.BackoffRemaining("frank") == 0 {
		t.Fatal("no back-off to reset")
	}
	cases := []struct {
		name   string
		mutate func(r *http.Request)
		code   int
	}{
		{"no custom header (an HTML form)", func(r *http.Request) { r.Header.Del(ActionHeader) }, http.StatusForbidden},
		{"foreign Origin", func(r *http.Request) { r.Header.Set("Origin", "http://evil.test") }, http.StatusForbidden},
		{"foreign Referer", func(r *http.Request) { r.Header.Set("Referer", "http://127.0.0.2:8080/attack.html") }, http.StatusForbidden},
		{"rebound Host", func(r *http.Request) { r.Host = "rebind.evil.test:10057" }, http.StatusForbidden},
		{"same Origin", func(r *http.Request) { r.Header.Set("Origin", "http://localhost:10057") }, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/-/backoff/reset", "/-/reload"} {
				req := actionRequest(path)
				tc.mutate(req)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != tc.code {
					t.Errorf("%s: %d %s, want %d", path, rec.Code, rec.Body.String(), tc.code)
				}
			}
			if tc.code == http.StatusForbidden && s.BackoffRemaining("frank") == 0 {
				t.Fatal("a refused request reset the back-off")
			}
		})
	}
	// An allowed host name (any case) is accepted.
	get(t, h, "/probe?target=frank", nil)
	req := actionRequest("/-/backoff/reset")
	req.Host = "autodiscover-exporter.monitoring.svc:10057"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("allowed host: %d %s", rec.Code, rec.Body.String())
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
