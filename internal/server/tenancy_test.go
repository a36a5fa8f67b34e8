package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
)

// Credentials only go to domains the operator paired them with: a scrape
// may override a mailbox's module only with one that has no credentials
// or whose credentials belong to the mailbox's domain; any other override
// is refused with 400 before any traffic, and puts no account in back-off.
func TestModuleOverridesCannotSendOneTenantsCredentialsToAnother(t *testing.T) {
	l := startLab(t)
	own := l.basicModule(t, "frank@expiring.test", l.password)
	tenantB := l.basicModule(t, "bob@fabrikam.test", "tenant-b-secret")
	sameDomain := l.basicModule(t, "ops@expiring.test", "ops-secret")
	anonymous := l.labModule()
	path := writeLabConfig(t, map[string]*config.Module{"own": own, "tenant-b": tenantB, "same-domain": sameDomain, "anonymous": anonymous},
		&config.Mailbox{Name: "frank", Address: "frank@expiring.test", Module: "own"},
		&config.Mailbox{Name: "bob", Address: "bob@fabrikam.test", Module: "tenant-b"},
		&config.Mailbox{Name: "ops", Address: "ops@expiring.test", Module: "same-domain"},
	)
	s, _ := newTestServer(t, path)
	for _, tc := range []struct {
		module string
		code   int
	}{
		{"tenant-b", http.StatusBadRequest},
		{"own", http.StatusOK},
		{"same-domain", http.StatusOK},
		{"anonymous", http.StatusOK},
		{"nonexistent", http.StatusBadRequest},
	} {
		t.Run(tc.module, func(t *testing.T) {
			l.estate.ResetRequests()
			code, body := get(t, s.Handler(), "/probe?target=frank&module="+tc.module, nil)
			if code != tc.code {
				t.Fatalf("code %d, want %d: %s", code, tc.code, body)
			}
			if tc.code == http.StatusBadRequest {
				if !strings.Contains(body, tc.module) {
					t.Errorf("the 400 does not say why: %s", body)
				}
				if n := len(l.estate.Requests()); n != 0 {
					t.Errorf("%d requests reached the lab for a refused override", n)
				}
			}
			for _, r := range l.estate.Requests() {
				if strings.Contains(r.Authorization, "Basic ") && tc.module == "tenant-b" {
					t.Errorf("tenant B's credentials reached %s", r.Server)
				}
			}
		})
	}
	if s.BackoffRemaining("bob") != 0 || s.BackoffRemaining("frank") != 0 {
		t.Error("a refused override put an account in back-off")
	}
}
