package server

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log/level"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
)

// The credential back-off belongs to the account: mailboxes of two modules
// that share one stale account, scraped at once, cost it one refused
// logon; the back-off survives a restart through --auth.backoff-file; a
// reload of an unchanged file keeps it.
func TestOneStaleAccountCostsOneRefusedLogonAcrossMailboxesModulesAndRestarts(t *testing.T) {
	l := startLab(t)
	dir := t.TempDir()
	a, b := l.basicModule(t, "frank@expiring.test", "stale-password"), l.basicModule(t, "frank@expiring.test", "stale-password")
	var mailboxes []*config.Mailbox
	for i := 0; i < 12; i++ {
		mailboxes = append(mailboxes, &config.Mailbox{Name: fmt.Sprintf("m%d", i), Address: fmt.Sprintf("u%d@expiring.test", i), Module: []string{"a", "b"}[i%2]})
	}
	path := writeLabConfig(t, map[string]*config.Module{"a": a, "b": b}, mailboxes...)
	backoffFile := filepath.Join(dir, "backoff.json")
	start := func() *Server {
		s, err := New(Options{ConfigFile: path, TimeoutOffset: 500 * time.Millisecond, HistoryLimit: 10, MaxConcurrent: 64, BackoffFile: backoffFile}, testLogger(&strings.Builder{}, level.AllowInfo()))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	scrapeAll := func(s *Server) {
		var wg sync.WaitGroup
		for _, mb := range mailboxes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				get(t, s.Handler(), "/probe?target="+mb.Name, nil)
			}()
		}
		wg.Wait()
	}
	host := "autodiscover.expiring.test"
	s := start()
	scrapeAll(s)
	if n := authorizedRequests(l, host); n != 1 {
		t.Fatalf("%d requests with the stale credentials for 12 mailboxes in two modules, want 1", n)
	}
	for _, mb := range mailboxes {
		if s.BackoffRemaining(mb.Name) == 0 {
			t.Errorf("%s shows no back-off", mb.Name)
		}
	}
	if code, out := post(t, s.Handler(), "/-/reload"); code != http.StatusOK {
		t.Fatalf("reload = %d %s", code, out)
	}
	scrapeAll(s)
	if n := authorizedRequests(l, host); n != 1 {
		t.Errorf("a reload of the unchanged file offered the stale password again (%d requests)", n)
	}
	restarted := start()
	scrapeAll(restarted)
	if n := authorizedRequests(l, host); n != 1 {
		t.Errorf("after a restart the stale password was offered again (%d requests)", n)
	}
	if restarted.BackoffRemaining("m0") == 0 {
		t.Error("the restarted exporter shows no back-off")
	}
}
