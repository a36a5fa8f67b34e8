package probe_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

func requireKDC(t *testing.T) {
	t.Helper()
	requireServer(t, lab.KDCPath, "krb5-kdc krb5-admin-server")
}

const (
	realm        = "CORP.CONTOSO.TEST"
	kerbHost     = "autodiscover.corp.contoso.test"
	kerbUser     = "alice"
	kerbPassword = "Kerberos-pw1"
	kerbMailbox  = "alice@corp.contoso.test"
)

func startKDC(t *testing.T, skew time.Duration, services ...string) *lab.KDC {
	t.Helper()
	requireKDC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k, err := lab.StartKDC(ctx, lab.KDCOptions{Dir: t.TempDir(), Realm: realm, Users: map[string]string{kerbUser: kerbPassword}, Services: services, Skew: skew})
	if err != nil {
		t.Fatalf("starting krb5kdc: %v", err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// kerberosEstate serves Autodiscover for alice at kerbHost behind
// Negotiate with Kerberos only, verified with the host's HTTP key from a
// real KDC, and a kerberos module for it.
func kerberosEstate(t *testing.T) (*lab.Estate, *lab.KDC, *lab.KerberosVerifier, probe.Settings) {
	t.Helper()
	k := startKDC(t, 0, "HTTP/"+kerbHost)
	e := newEstate(t)
	kt, err := k.Keytab("HTTP/" + kerbHost)
	if err != nil {
		t.Fatal(err)
	}
	v, err := lab.NewKerberosVerifier(kt, "HTTP/"+kerbHost, realm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.AddKerberosAutodiscover(kerbHost, kerbMailbox, v); err != nil {
		t.Fatal(err)
	}
	s := kerberosSettings(e, k)
	return e, k, v, s
}

// kerberosSettings is a kerberos module for alice at the autodiscover
// host, logging in at k.
func kerberosSettings(e *lab.Estate, k *lab.KDC) probe.Settings {
	s := settingsFor(e, lab.Mailbox{Address: kerbMailbox})
	s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	s.Auth = probe.AuthSettings{Type: probe.AuthKerberos, Username: kerbUser, Password: kerbPassword, Realm: realm, KDCs: []string{k.Addr()}}
	return s
}

func credentialStep(t *testing.T, res *probe.Result) probe.Step {
	t.Helper()
	for _, st := range res.Steps {
		if st.Name == probe.StepCredentials {
			return st
		}
	}
	t.Fatalf("no credentials step:\n%s", res.Log())
	return probe.Step{}
}

func TestKerberosAnswersNegotiateWithATicketFromTheKDC(t *testing.T) {
	e, k, v, s := kerberosEstate(t)
	keytab, err := k.Keytab(kerbUser)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		auth func(*probe.Settings)
	}{
		{"password", func(*probe.Settings) {}},
		{"keytab", func(s *probe.Settings) { s.Auth.Password, s.Auth.Keytab = "", keytab }},
		{"KDC from the realm's SRV records", func(s *probe.Settings) {
			// dc1 is published in the lab's DNS; its port 88 leads to the KDC.
			e.AddSRV("_kerberos._tcp.corp.contoso.test", 0, 100, 88, "dc1.corp.contoso.test")
			ip, err := e.IPOf("dc1.corp.contoso.test")
			if err != nil {
				t.Fatal(err)
			}
			s.ConnectTo = map[string]string{ip + ":88": k.Addr()}
			for from, to := range e.ConnectTo() {
				s.ConnectTo[from] = to
			}
			s.Auth.KDCs = nil
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := s
			c.auth(&s)
			before := len(v.Accepted())
			p, err := probe.NewProber(s, probe.Env{})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ { // the second reuses the cached tickets
				res, _ := p.Run(context.Background(), probe.Target{Address: kerbMailbox})
				if !res.Success {
					t.Fatalf("run %d failed:\n%s", i+1, res.Log())
				}
				if st := credentialStep(t, res); !strings.Contains(st.Detail, "Negotiate credentials of alice@"+realm+" sent") {
					t.Errorf("credentials step %q", st.Detail)
				}
			}
			if got := v.Accepted()[before:]; len(got) != 2 || got[0] != kerbUser+"@"+realm {
				t.Errorf("the server accepted %v, want alice's ticket twice", got)
			}
		})
	}
	for _, rq := range e.RequestsTo(kerbHost) {
		if strings.HasPrefix(rq.Authorization, "Basic") || strings.Contains(rq.Authorization, kerbPassword) {
			t.Errorf("a request carried the password: %q", rq.Authorization)
		}
	}
}

func TestKerberosFailuresAreClassedSteps(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(t *testing.T, s *probe.Settings, e *lab.Estate)
		class   probe.ErrorClass
		detail  string
		backoff bool
	}{
		{name: "wrong password", setup: func(_ *testing.T, s *probe.Settings, _ *lab.Estate) { s.Auth.Password = "stale" },
			class: probe.ClassPreauthFailed, detail: "KDC_ERR_PREAUTH_FAILED", backoff: true},
		{name: "unknown user", setup: func(_ *testing.T, s *probe.Settings, _ *lab.Estate) { s.Auth.Username = "mallory" },
			class: probe.ClassPrincipalUnknown, detail: "knows no user mallory"},
		{name: "SPN not registered", setup: func(_ *testing.T, s *probe.Settings, _ *lab.Estate) {
			s.Auth.SPN = "HTTP/unregistered.corp.contoso.test"
		},
			class: probe.ClassPrincipalUnknown, detail: "no service principal HTTP/unregistered.corp.contoso.test"},
		{name: "KDC down", setup: func(t *testing.T, s *probe.Settings, e *lab.Estate) {
			ip, err := e.IPOf("kdc-gone.corp.contoso.test")
			if err != nil {
				t.Fatal(err)
			}
			s.Auth.KDCs = []string{ip + ":1"}
		}, class: probe.ClassKDCUnreachable, detail: "no KDC of " + realm + " answered"},
		{name: "KDC never answers", setup: func(t *testing.T, s *probe.Settings, e *lab.Estate) {
			if err := e.BlackHole("kdc-hung.corp.contoso.test", 88); err != nil {
				t.Fatal(err)
			}
			ip, err := e.IPOf("kdc-hung.corp.contoso.test")
			if err != nil {
				t.Fatal(err)
			}
			s.ConnectTo = e.ConnectTo()
			s.Auth.KDCs = []string{ip + ":88"}
			s.Timeout = 3 * time.Second
		}, class: probe.ClassKDCUnreachable, detail: "did not answer in time"},
		{name: "KDC clock skewed", setup: func(t *testing.T, s *probe.Settings, _ *lab.Estate) {
			skewed := startKDC(t, 2*time.Hour, "HTTP/"+kerbHost)
			s.Auth.KDCs = []string{skewed.Addr()}
		}, class: probe.ClassClockSkew, detail: "KRB_AP_ERR_SKEW"},
		{name: "realm's KDCs from DNS SRV", setup: func(t *testing.T, s *probe.Settings, e *lab.Estate) {
			// No SRV records: the lookup fails, clearly.
			s.Auth.KDCs = nil
		}, class: probe.ClassKDCUnreachable, detail: "_kerberos._tcp.corp.contoso.test"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, _, v, s := kerberosEstate(t)
			c.setup(t, &s, e)
			guard := probe.NewBackoff(time.Hour, time.Hour)
			p, err := probe.NewProber(s, probe.Env{Guard: guard})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, _ := p.Run(ctx, probe.Target{Address: kerbMailbox})
			st := credentialStep(t, res)
			if res.Success || st.OK || st.ErrorClass != c.class || !strings.Contains(st.Detail, c.detail) {
				t.Fatalf("credentials step %s %q, want %s with %q\n%s", st.ErrorClass, st.Detail, c.class, c.detail, res.Log())
			}
			if len(v.Accepted()) != 0 {
				t.Error("the server accepted a ticket")
			}
			_, blocked := guard.Blocked(p.CredentialKey())
			if blocked != c.backoff {
				t.Errorf("back-off started: %v, want %v", blocked, c.backoff)
			}
		})
	}
}

func TestKerberosDoesNotSettleForOtherSchemes(t *testing.T) {
	k := startKDC(t, 0, "HTTP/"+kerbHost)
	cases := []struct {
		name       string
		challenges []string
		// handler, when set, replaces the lab's Autodiscover.
		handler http.HandlerFunc
		class   probe.ErrorClass
	}{
		{name: "NTLM and Basic only", challenges: []string{"NTLM", `Basic realm="x"`}, class: probe.ClassUnsupportedScheme},
		{name: "Negotiate answered with an NTLM challenge", handler: func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				w.Header().Set("WWW-Authenticate", "Negotiate")
			} else {
				// NTLMSSP CHALLENGE (type 2), raw under Negotiate.
				w.Header().Set("WWW-Authenticate", "Negotiate TlRMTVNTUAACAAAAAAAAADgAAAAFgomiESIzRFVmd4gAAAAAAAAAAAAAAAAAAAAA")
			}
			w.WriteHeader(http.StatusUnauthorized)
		}, class: probe.ClassNotKerberos},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEstate(t)
			var h http.Handler = c.handler
			if c.handler == nil {
				h = &lab.Autodiscover{Accounts: map[string]string{kerbMailbox: kerbPassword}, Challenges: c.challenges}
			}
			if err := e.HTTPS(kerbHost, h); err != nil {
				t.Fatal(err)
			}
			s := kerberosSettings(e, k)
			res := mustRun(t, kerbMailbox, s)
			if st := credentialStep(t, res); st.ErrorClass != c.class {
				t.Fatalf("credentials step %s %q, want %s\n%s", st.ErrorClass, st.Detail, c.class, res.Log())
			}
			for _, rq := range e.RequestsTo(kerbHost) {
				if a := rq.Authorization; a != "" && !strings.HasPrefix(a, "Negotiate ") {
					t.Errorf("the module sent %q: only Negotiate is allowed", a)
				}
			}
		})
	}
}

func TestKerberosTicketsGoOnlyToPairedDomains(t *testing.T) {
	// The mailbox is in contoso.test; its Autodiscover redirects to a host
	// of another domain that also asks for Negotiate.
	k := startKDC(t, 0, "HTTP/"+kerbHost, "HTTP/autodiscover.elsewhere.test")
	e := newEstate(t)
	kt, err := k.Keytab("HTTP/autodiscover.elsewhere.test")
	if err != nil {
		t.Fatal(err)
	}
	v, err := lab.NewKerberosVerifier(kt, "HTTP/autodiscover.elsewhere.test", realm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.AddKerberosAutodiscover("autodiscover.elsewhere.test", kerbMailbox, v); err != nil {
		t.Fatal(err)
	}
	if err := e.HTTPS(kerbHost, http.RedirectHandler("https://autodiscover.elsewhere.test/autodiscover/autodiscover.xml", http.StatusFound)); err != nil {
		t.Fatal(err)
	}
	s := kerberosSettings(e, k)
	res := mustRun(t, kerbMailbox, s)
	if st := credentialStep(t, res); st.ErrorClass != probe.ClassWithheldDomain {
		t.Fatalf("credentials step %s %q, want withheld_domain\n%s", st.ErrorClass, st.Detail, res.Log())
	}
	for _, rq := range e.RequestsTo("autodiscover.elsewhere.test") {
		if rq.Authorization != "" {
			t.Errorf("a ticket went to a host outside the paired domains: %q", rq.Authorization)
		}
	}
	if strings.Contains(k.Log(), "autodiscover.elsewhere.test") {
		t.Error("the KDC was asked for a ticket for a host outside the paired domains")
	}
}

func TestARefusedTicketIsNoWrongPasswordAndStartsNoBackoff(t *testing.T) {
	k := startKDC(t, 0, "HTTP/"+kerbHost)
	e := newEstate(t)
	if err := e.HTTPS(kerbHost, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", "Negotiate")
		}
		w.WriteHeader(http.StatusUnauthorized)
	})); err != nil {
		t.Fatal(err)
	}
	s := kerberosSettings(e, k)
	guard := probe.NewBackoff(time.Hour, time.Hour)
	p, err := probe.NewProber(s, probe.Env{Guard: guard})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := p.Run(context.Background(), probe.Target{Address: kerbMailbox})
	if st := credentialStep(t, res); st.ErrorClass != probe.ClassAuthFailed {
		t.Fatalf("credentials step %s %q, want auth_failed", st.ErrorClass, st.Detail)
	}
	if _, blocked := guard.Blocked(p.CredentialKey()); blocked {
		t.Error("a web server refusing a ticket started the back-off")
	}
}

func TestAClosedProberAsksTheKDCNoMore(t *testing.T) {
	_, k, _, s := kerberosEstate(t)
	p, err := probe.NewProber(s, probe.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := p.Run(context.Background(), probe.Target{Address: kerbMailbox}); !res.Success {
		t.Fatalf("first run failed:\n%s", res.Log())
	}
	before := strings.Count(k.Log(), "AS_REQ")
	if before == 0 {
		t.Fatalf("the KDC logged no AS_REQ:\n%s", k.Log())
	}
	p.Close() // as a reload does to the probers it replaces
	res, _ := p.Run(context.Background(), probe.Target{Address: kerbMailbox})
	if st := credentialStep(t, res); st.ErrorClass != probe.ClassAuthError || !strings.Contains(st.Detail, "reloaded") {
		t.Errorf("after Close: credentials step %s %q", st.ErrorClass, st.Detail)
	}
	if after := strings.Count(k.Log(), "AS_REQ"); after != before {
		t.Errorf("the closed prober logged in again (%d AS_REQ before, %d after)", before, after)
	}
}

func TestAMalformedKeytabIsRefusedWithoutQuotingIt(t *testing.T) {
	s := probe.Settings{DNSServer: "127.0.0.1:53", Auth: probe.AuthSettings{Type: probe.AuthKerberos, Username: kerbUser, Realm: realm,
		Keytab: []byte("\x05\x02\x00\x00\x00(\x00\x01SECRETKEYBYTES")}}
	_, err := probe.NewProber(s, probe.Env{})
	if err == nil || strings.Contains(err.Error(), "SECRETKEY") {
		t.Errorf("NewProber: %v; want a refusal that does not quote the keytab", err)
	}
}
