package server

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log/level"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/demo"
	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// A revoked refresh token is refused once and then withheld, reload or
// not; once a login wrote a new one, the next scrape uses it. The start
// says what only the operator can fix.
func TestALoginEndsTheBackoffOfARevokedRefreshToken(t *testing.T) {
	l := startLab(t)
	ts, err := l.estate.TokenServer()
	if err != nil {
		t.Fatal(err)
	}
	user := "hana@hma.test"
	file := filepath.Join(t.TempDir(), "rt")
	m := l.demo.Module()
	m.Auth = config.Auth{Type: probe.AuthOAuth2, Grant: probe.GrantRefreshToken, ClientID: demo.PublicClientID,
		TokenURL: "https://" + lab.TokenHost + "/t/oauth2/v2.0/token", DeviceAuthURL: "https://" + lab.TokenHost + "/t/oauth2/v2.0/devicecode",
		RefreshTokenFile: file}
	m.AllowedDomains = []string{lab.ModernDomain}
	path := writeLabConfig(t, map[string]*config.Module{"hma": m}, &config.Mailbox{Name: "hana", Address: user, Module: "hma"})

	var logs strings.Builder
	s, err := New(Options{ConfigFile: path, TimeoutOffset: 500 * time.Millisecond, HistoryLimit: 10, MaxConcurrent: 8, BackoffInitial: time.Hour, BackoffMax: time.Hour}, testLogger(&logs, level.AllowInfo()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "does not exist yet: run `autodiscover_exporter login hma` to sign in") {
		t.Errorf("the start does not say to log in:\n%s", logs.String())
	}
	store := probe.NewTokenStore() // the login command's
	if err := store.Save(file, ts.IssueRefreshToken(demo.PublicClientID, user)); err != nil {
		t.Fatal(err)
	}
	success := func() bool {
		_, body := get(t, s.Handler(), "/probe?target=hana", nil)
		return strings.Contains(body, "\nautodiscover_probe_success 1\n")
	}
	ts.TTL = time.Second
	tokenExpiry := time.Now().Add(ts.TTL)
	if !success() {
		t.Fatal("the probe fails with a fresh refresh token")
	}

	// Revoking a user's sessions leaves issued access tokens valid until
	// they expire, as in Entra ID; then the refresh is refused.
	ts.RevokeRefreshTokens(user)
	time.Sleep(time.Until(tokenExpiry) + 100*time.Millisecond)
	before := ts.Requests()
	if success() || success() {
		t.Fatal("the probe succeeds with a revoked refresh token")
	}
	if n := ts.Requests() - before; n != 1 {
		t.Errorf("%d token requests with the revoked refresh token, want 1 and then the back-off", n)
	}
	if s.BackoffRemaining("hana") == 0 {
		t.Fatal("invalid_grant started no back-off")
	}

	if code, out := post(t, s.Handler(), "/-/reload"); code != http.StatusOK {
		t.Fatalf("reload = %d %s", code, out)
	}
	before = ts.Requests()
	if success() || s.BackoffRemaining("hana") == 0 || ts.Requests() != before {
		t.Error("a reload without a login lifted the back-off of the refused refresh token")
	}
	// The login command writes through a store of its own; the exporter
	// notices at its next probe, without a reload.
	if err := store.Save(file, ts.IssueRefreshToken(demo.PublicClientID, user)); err != nil {
		t.Fatal(err)
	}
	if !success() {
		t.Error("the probe fails after a login")
	}
	if s.BackoffRemaining("hana") != 0 {
		t.Error("the back-off of the old refresh token outlived the login")
	}
}
