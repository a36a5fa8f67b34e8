package probe

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
)

func TestBackoffDoublesToItsCapAndResets(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	b := NewBackoff(15*time.Minute, time.Hour)
	b.now = func() time.Time { return now }
	if _, blocked := b.Blocked("m"); blocked {
		t.Fatal("blocked before any refusal")
	}
	for i, want := range []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour, time.Hour} {
		b.Refused("m")
		if got := b.Remaining("m"); got != want {
			t.Errorf("after refusal %d: %v withheld, want %v", i+1, got, want)
		}
	}
	if _, blocked := b.Blocked("other"); blocked {
		t.Error("a refusal for one mailbox blocked another")
	}
	now = now.Add(time.Hour)
	if _, blocked := b.Blocked("m"); blocked {
		t.Error("still blocked after the back-off passed")
	}
	b.Refused("m")
	if got := b.Remaining("m"); got != time.Hour {
		t.Errorf("the doubling restarted after the back-off passed: %v", got)
	}
	b.Accepted("m")
	b.Refused("m")
	if got := b.Remaining("m"); got != 15*time.Minute {
		t.Errorf("accepted credentials did not reset the back-off: %v", got)
	}
	b.ResetAll()
	if b.Remaining("m") != 0 {
		t.Error("ResetAll left a back-off")
	}
}

func TestWrongPasswordStopsCredentialsForTheBackoffPeriod(t *testing.T) {
	e, err := lab.New()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	mb, _, err := e.AddOnPremises("lockout.test", "una", "right-password")
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	guard := NewBackoff(15*time.Minute, 4*time.Hour)
	guard.now = func() time.Time { return clock }
	s := labSettings(e, mb)
	s.Methods = []Method{MethodAutodiscoverDomain}
	s.Auth.Password = "stale-password"
	// The back-off belongs to the account, whatever the password.
	key := credentialKey(s.Auth)
	run := func() *Result {
		p, err := NewProber(s, Env{Guard: guard})
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Run(context.Background(), Target{Address: mb.Address})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	credentialsSent := func() int {
		n := 0
		for _, r := range e.Requests() {
			if r.Authorization != "" {
				n++
			}
		}
		return n
	}

	res := run()
	if st := lastOf(res, StepCredentials); st.ErrorClass != "auth_failed" {
		t.Fatalf("first run: credentials %+v, want auth_failed", st)
	}
	if res.AuthBackoff <= 0 {
		t.Errorf("no back-off reported after a refusal")
	}
	sent := credentialsSent()
	res = run()
	if st := lastOf(res, StepCredentials); st.ErrorClass != "auth_backoff" {
		t.Fatalf("second run: credentials %+v, want auth_backoff", st)
	}
	if credentialsSent() != sent {
		t.Error("credentials were sent during the back-off")
	}
	if res.AuthBackoff <= 0 || res.AuthBackoff > 15*time.Minute {
		t.Errorf("back-off %v, want up to 15m", res.AuthBackoff)
	}

	clock = clock.Add(16 * time.Minute)
	res = run()
	if st := lastOf(res, StepCredentials); st.ErrorClass != "auth_failed" || credentialsSent() == sent {
		t.Fatalf("after the back-off: credentials %+v; they should be tried again", st)
	}
	if got := guard.Remaining(key); got != 30*time.Minute {
		t.Errorf("second refusal: back-off %v, want 30m", got)
	}

	// The password is fixed and the back-off reset: credentials work again.
	guard.Reset(key)
	s.Auth.Password = "right-password"
	if res := run(); !res.Success || res.AuthBackoff != 0 {
		t.Errorf("after a reset with the right password: success=%v backoff=%v", res.Success, res.AuthBackoff)
	}
}

func lastOf(res *Result, name StepName) Step {
	var out Step
	for _, s := range res.Steps {
		if s.Name == name {
			out = s
		}
	}
	return out
}

// The back-off belongs to the credential: twelve mailboxes of one account
// with a stale password, probed at once, cost the account one refused
// logon, not twelve; and every kind of refusal after the credentials were
// offered starts it (401 again, 403, a token endpoint's invalid_client).
func TestBackoffBelongsToTheCredentialAndEveryRefusalStartsIt(t *testing.T) {
	cases := []struct {
		name     string
		setup    func(t *testing.T, e *lab.Estate) Settings
		mailbox  func(i int) string
		logons   func(e *lab.Estate) int
		wantStep ErrorClass
	}{
		{"twelve mailboxes, one stale account, probed at once (401 again)", func(t *testing.T, e *lab.Estate) Settings {
			ad := &lab.Autodiscover{Accounts: map[string]string{"svc@shared.test": "right"}, Users: map[string]lab.Reply{}}
			if err := e.HTTPS("autodiscover.shared.test", ad); err != nil {
				t.Fatal(err)
			}
			s := labSettings(e, lab.Mailbox{Username: "svc@shared.test", Password: "stale"})
			s.Methods = []Method{MethodAutodiscoverDomain}
			return s
		}, func(i int) string { return fmt.Sprintf("u%d@shared.test", i) }, authorizedTo("autodiscover.shared.test"), ClassAuthFailed},
		{"403 after the credentials", func(t *testing.T, e *lab.Estate) Settings {
			mb, ad, err := e.AddOnPremises("forbid.test", "fay", "pw")
			if err != nil {
				t.Fatal(err)
			}
			ad.SetUser(mb.Address, lab.Reply{Status: http.StatusForbidden, Raw: "no", ContentType: "text/plain"})
			s := labSettings(e, mb)
			s.Methods = []Method{MethodAutodiscoverDomain}
			return s
		}, func(int) string { return "fay@forbid.test" }, authorizedTo("autodiscover.forbid.test"), ClassAuthFailed},
		{"token endpoint answers invalid_client", func(t *testing.T, e *lab.Estate) Settings {
			ts := &lab.TokenServer{Clients: map[string]string{"app-1": "right"}}
			if err := e.HTTPS("login.lab.test", ts); err != nil {
				t.Fatal(err)
			}
			if err := e.HTTPS("autodiscover.token.test", &lab.Autodiscover{Tokens: ts, Challenges: []string{`Bearer authorization_uri="https://login.lab.test/x"`}, Users: map[string]lab.Reply{}}); err != nil {
				t.Fatal(err)
			}
			s := labSettings(e, lab.Mailbox{})
			s.Methods = []Method{MethodAutodiscoverDomain}
			s.Auth = AuthSettings{Type: AuthOAuth2, TokenURL: "https://login.lab.test/t/oauth2/v2.0/token", ClientID: "app-1", ClientSecret: "stale"}
			return s
		}, func(int) string { return "olga@token.test" }, func(e *lab.Estate) int { return len(e.RequestsTo("login.lab.test")) }, ClassAuthError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := lab.New()
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			guard := NewBackoff(15*time.Minute, 4*time.Hour)
			p, err := NewProber(tc.setup(t, e), Env{Guard: guard})
			if err != nil {
				t.Fatal(err)
			}
			results := make([]*Result, 12)
			var wg sync.WaitGroup
			for i := range results {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], _ = p.Run(context.Background(), Target{Address: tc.mailbox(i)})
				}()
			}
			wg.Wait()
			if n := tc.logons(e); n != 1 {
				t.Errorf("%d requests with the credentials, want exactly 1 refused logon", n)
			}
			refused, withheld := 0, 0
			for _, res := range results {
				switch lastOf(res, StepCredentials).ErrorClass {
				case tc.wantStep:
					refused++
				case ClassAuthBackoff:
					withheld++
				}
				if res.AuthBackoff <= 0 {
					t.Errorf("a result shows no back-off:\n%s", res.Log())
				}
			}
			if refused != 1 || withheld != 11 {
				t.Errorf("%d refused and %d withheld, want 1 and 11", refused, withheld)
			}
			if guard.Remaining(p.CredentialKey()) == 0 {
				t.Errorf("no back-off for %s", p.CredentialKey())
			}
		})
	}
}

// authorizedTo counts the requests that carried credentials to host.
func authorizedTo(host string) func(e *lab.Estate) int {
	return func(e *lab.Estate) int {
		n := 0
		for _, r := range e.RequestsTo(host) {
			if r.Authorization != "" {
				n++
			}
		}
		return n
	}
}

// The back-off survives a restart: a second Backoff persisted to the same
// file withholds what the first one withheld, and the file is written
// whole and readable by the owner only.
func TestBackoffSurvivesARestartThroughItsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "backoff.json")
	var writeErrs []error
	first := NewBackoff(15*time.Minute, 4*time.Hour)
	if err := first.Persist(path, func(err error) { writeErrs = append(writeErrs, err) }); err != nil {
		t.Fatal(err)
	}
	first.Refused("basic:svc@contoso.test")
	first.Refused("basic:svc@contoso.test")
	first.Refused("ntlm:other")
	first.Reset("ntlm:other")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
	second := NewBackoff(15*time.Minute, 4*time.Hour)
	if err := second.Persist(path, nil); err != nil {
		t.Fatal(err)
	}
	if got := second.Remaining("basic:svc@contoso.test"); got < 29*time.Minute || got > 30*time.Minute {
		t.Errorf("after the restart %v left, want the 30 min of the second refusal", got)
	}
	if second.Remaining("ntlm:other") != 0 {
		t.Error("a reset back-off came back after the restart")
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".backoff-*"))
	if len(leftovers) != 0 || len(writeErrs) != 0 {
		t.Errorf("temporary files %v, write errors %v", leftovers, writeErrs)
	}
	for _, bad := range []string{"{", `{"k": {"until": "soon"}}`} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := NewBackoff(0, 0).Persist(path, nil); err == nil {
			t.Errorf("a broken file %q was accepted", bad)
		}
	}
}
