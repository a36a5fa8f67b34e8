package probe

import (
	"context"
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
	run := func() *Result {
		p, err := NewProber(s, Env{Guard: guard})
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Run(context.Background(), Target{Address: mb.Address, GuardKey: "lockout-una"})
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
	if got := guard.Remaining("lockout-una"); got != 30*time.Minute {
		t.Errorf("second refusal: back-off %v, want 30m", got)
	}

	// The password is fixed and the back-off reset: credentials work again.
	guard.Reset("lockout-una")
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
