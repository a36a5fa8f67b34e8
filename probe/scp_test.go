package probe_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// requireServer skips without the Debian server find looks for, saying
// which packages install it, and fails under CI=true, where .ci/run
// installs them.
func requireServer(t *testing.T, find func() (string, string), packages string) {
	t.Helper()
	if path, why := find(); path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is needed under CI=true: %s", packages, why)
		}
		t.Skipf("not installed (apt-get install %s): %s", packages, why)
	}
}

func requireSlapd(t *testing.T) { t.Helper(); requireServer(t, lab.SlapdPath, "slapd ldap-utils") }

// The inside estate: the forest corp.contoso.test, whose domain
// controller dc1 holds the SCPs, and the Client Access servers they name.
const (
	dcHost      = "dc1.corp.contoso.test"
	casHost     = "mail.corp.contoso.test"
	insideUser  = "sophie@contoso.test"
	insidePass  = "Inside-pw1"
	scpSite     = "HQ"
	healthySCP  = "https://mail.corp.contoso.test/Autodiscover/Autodiscover.xml"
	staleSCPURL = "https://ex2010.corp.contoso.test/autodiscover/autodiscover.xml"
)

// insideEstate starts the estate, the Client Access server and a real
// slapd published as dc1, holding objects.
func insideEstate(t *testing.T, o lab.DirectoryOptions) (*lab.Estate, *lab.Directory, probe.Settings) {
	t.Helper()
	requireSlapd(t)
	e := newEstate(t)
	if _, err := e.AddInternalAutodiscover(casHost, insideUser, insidePass); err != nil {
		t.Fatal(err)
	}
	d := startDirectory(t, e, dcHost, o)
	mb := lab.Mailbox{Address: insideUser, Username: insideUser, Password: insidePass}
	s := settingsFor(e, mb)
	s.Methods = []probe.Method{probe.MethodSCP}
	s.LDAP = probe.LDAPSettings{URL: "ldaps://" + dcHost, BindDN: d.BindDN(), Password: d.BindPassword(), Site: scpSite}
	return e, d, s
}

func startDirectory(t *testing.T, e *lab.Estate, host string, o lab.DirectoryOptions) *lab.Directory {
	t.Helper()
	o.Dir = t.TempDir()
	if o.CA == nil {
		o.CA = e.CA
	}
	o.Host = host
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := lab.StartDirectory(ctx, o)
	if err != nil {
		t.Fatalf("starting slapd: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := e.PublishDirectory(host, d); err != nil {
		t.Fatal(err)
	}
	return d
}

func stepsOf(res *probe.Result, method probe.Method, host string) []probe.Step {
	var out []probe.Step
	for _, st := range res.Steps {
		if st.Method == method && st.Host == host {
			out = append(out, st)
		}
	}
	return out
}

func stepNames(steps []probe.Step) string {
	names := make([]string, len(steps))
	for i, st := range steps {
		names[i] = string(st.Name)
		if !st.OK {
			names[i] += "(" + string(st.ErrorClass) + ")"
		}
	}
	return strings.Join(names, " ")
}

func TestSCPLookupOrdersSiteThenUnscopedThenOtherSitesAndTheChainSucceeds(t *testing.T) {
	for _, scheme := range []string{"ldaps", "ldap"} {
		t.Run(scheme, func(t *testing.T) {
			e, _, s := insideEstate(t, lab.DirectoryOptions{Objects: []lab.SCPObject{
				{Name: "EX-BRANCH", Binding: "https://mail-branch.corp.contoso.test/Autodiscover/Autodiscover.xml", Keywords: []string{"Site=Branch"}},
				{Name: "EX-NOSITE", Binding: "https://mail2.corp.contoso.test/Autodiscover/Autodiscover.xml"},
				{Name: "EX01", Binding: healthySCP, Keywords: []string{"Site=" + scpSite}},
			}})
			s.LDAP.URL = scheme + "://" + dcHost
			res := mustRun(t, insideUser, s)
			if !res.Success || !strings.EqualFold(res.FinalURL, healthySCP) {
				t.Fatalf("success %v at %s, want settings from %s\n%s", res.Success, res.FinalURL, healthySCP, res.Log())
			}
			lookup := stepsOf(res, probe.MethodSCP, dcHost)
			want := "dns tcp tls_handshake cert_name cert_trust cert_validity ldap_bind scp_lookup"
			if got := stepNames(lookup); got != want {
				t.Errorf("directory steps %q, want %q", got, want)
			}
			if scheme == "ldap" && !strings.Contains(lookup[2].Detail, "after StartTLS") {
				t.Errorf("tls_handshake detail %q does not say StartTLS", lookup[2].Detail)
			}
			if lookup[1].Port != map[string]int{"ldaps": 636, "ldap": 389}[scheme] {
				t.Errorf("directory port %d", lookup[1].Port)
			}
			scp := res.SCP
			if scp == nil || scp.Records != 3 || len(scp.URLs) != 3 {
				t.Fatalf("SCP result %+v, want 3 records and 3 URLs", scp)
			}
			var order []string
			for _, u := range scp.URLs {
				order = append(order, u.Host+"/"+u.Scope)
			}
			if got, want := strings.Join(order, " "), "mail.corp.contoso.test/site mail2.corp.contoso.test/unscoped mail-branch.corp.contoso.test/other_site"; got != want {
				t.Errorf("SCP order %q, want %q", got, want)
			}
			if !scp.URLs[0].Tried || !scp.URLs[0].OK || scp.URLs[1].Tried {
				t.Errorf("the site's SCP should answer and the others stay untried: %+v", scp.URLs)
			}
			// The Client Access server got credentials, over the SCP URL.
			var authed int
			for _, rq := range e.RequestsTo(casHost) {
				if rq.Authorization != "" {
					authed++
				}
			}
			if authed == 0 {
				t.Error("the SCP URL's server never received the credentials")
			}
			log := res.Log()
			for _, want := range []string{"Attempting to retrieve the Autodiscover SCP objects from Active Directory at " + scheme + "://" + dcHost, "Searching the configuration partition for Autodiscover SCP objects", "1. " + healthySCP + " (site): answered", "(from an SCP object in Active Directory)"} {
				if !strings.Contains(log, want) {
					t.Errorf("step log lacks %q:\n%s", want, log)
				}
			}
		})
	}
}

func TestStaleSCPFailsWhileTheNextSCPAnswers(t *testing.T) {
	e, _, s := insideEstate(t, lab.DirectoryOptions{Objects: []lab.SCPObject{
		{Name: "EX2010", Binding: staleSCPURL, Keywords: []string{"Site=" + scpSite}},
		{Name: "EX01", Binding: healthySCP},
	}})
	// The decommissioned server's name still resolves; nothing listens.
	if _, err := e.IPOf("ex2010.corp.contoso.test"); err != nil {
		t.Fatal(err)
	}
	res := mustRun(t, insideUser, s)
	if !res.Success {
		t.Fatalf("the healthy SCP should still give settings:\n%s", res.Log())
	}
	u := res.SCP.URLs
	if len(u) != 2 || u[0].Host != "ex2010.corp.contoso.test" || !u[0].Tried || u[0].OK || !u[1].OK {
		t.Fatalf("SCP URLs %+v: want the stale one tried and failed, the next one answered", u)
	}
	stale := stepsOf(res, probe.MethodSCP, "ex2010.corp.contoso.test")
	if got := stepNames(stale); got != "dns tcp(refused)" {
		t.Errorf("stale SCP steps %q", got)
	}

	t.Run("expect.scp_hosts names the stale host", func(t *testing.T) {
		p, err := probe.NewProber(s, probe.Env{})
		if err != nil {
			t.Fatal(err)
		}
		res, _ := p.Run(context.Background(), probe.Target{Address: insideUser, Expect: &probe.Expectations{SCPHosts: []string{casHost}}})
		if res.Success || res.Failure == nil || res.Failure.Class != probe.ClassExpectationNotMet {
			t.Fatalf("success %v, failure %+v: a stale SCP must fail expect.scp_hosts", res.Success, res.Failure)
		}
		if d := res.Expectations[0].Detail; !strings.Contains(d, "not expected (stale?): ex2010.corp.contoso.test") {
			t.Errorf("expectation detail %q does not name the stale host", d)
		}
		res, _ = p.Run(context.Background(), probe.Target{Address: insideUser, Expect: &probe.Expectations{SCPHosts: []string{casHost, "ex2010.corp.contoso.test"}}})
		if !res.Success {
			t.Errorf("both hosts expected, yet the probe failed: %s", res.Reason)
		}
	})
}

func TestSCPPointerForTheMailboxDomainIsSearchedFirst(t *testing.T) {
	e, _, s := insideEstate(t, lab.DirectoryOptions{Objects: []lab.SCPObject{
		{Name: "EX-OLD", Binding: "https://mail2.corp.contoso.test/Autodiscover/Autodiscover.xml", Keywords: []string{"Site=" + scpSite}},
		{Name: "Contoso", Pointer: true, Binding: "LDAP://dc2.corp.contoso.test:389", Keywords: []string{"Domain=contoso.test"}},
		{Name: "Fabrikam", Pointer: true, Binding: "LDAP://dc9.fabrikam.test:389", Keywords: []string{"Domain=fabrikam.test"}},
		// A pointer of no domain, to a directory outside the paired
		// domains: searched last, and without the bind password.
		{Name: "Partner", Pointer: true, Binding: "LDAP://dc3.partner.test"},
		{Name: "Bad", Pointer: true, Binding: "LDAP://10.0.0.1:389"},
	}})
	d2 := startDirectory(t, e, "dc2.corp.contoso.test", lab.DirectoryOptions{Objects: []lab.SCPObject{{Name: "EX01", Binding: healthySCP}}})
	startDirectory(t, e, "dc3.partner.test", lab.DirectoryOptions{AllowAnonymous: true, Suffix: "DC=partner,DC=test",
		Objects: []lab.SCPObject{{Name: "PX01", Binding: "https://mail.partner.test/Autodiscover/Autodiscover.xml"}}})
	s.LDAP.BindDN, s.LDAP.Password = d2.BindDN(), d2.BindPassword()
	s.ConnectTo = e.ConnectTo() // now with dc2
	res := mustRun(t, insideUser, s)
	if !res.Success || !strings.EqualFold(res.FinalURL, healthySCP) {
		t.Fatalf("success %v at %s, want the pointer's SCP first\n%s", res.Success, res.FinalURL, res.Log())
	}
	if got := stepNames(stepsOf(res, probe.MethodSCP, "dc2.corp.contoso.test")); !strings.HasSuffix(got, "ldap_bind scp_lookup") {
		t.Errorf("the pointer's directory steps are %q", got)
	}
	if len(stepsOf(res, probe.MethodSCP, "dc9.fabrikam.test")) != 0 {
		t.Error("a pointer scoped to another domain was followed")
	}
	if u := res.SCP.URLs; len(u) != 3 || u[0].URL != healthySCP || u[2].Host != "mail.partner.test" {
		t.Errorf("SCP URLs %+v: the domain pointer's come first, the unscoped pointer's last", u)
	}
	partner := stepsOf(res, probe.MethodSCP, "dc3.partner.test")
	if got := stepNames(partner); !strings.HasSuffix(got, "ldap_bind scp_lookup") {
		t.Fatalf("the partner directory's steps are %q", got)
	}
	if d := partner[len(partner)-2].Detail; !strings.Contains(d, "bind password is withheld") {
		t.Errorf("the partner directory's bind %q should be anonymous", d)
	}
	var badPointer bool
	for _, st := range res.Steps {
		if st.Name == probe.StepSCPRecord && strings.Contains(st.Detail, "10.0.0.1") && st.ErrorClass == probe.ClassBadSCP {
			badPointer = true
		}
	}
	if !badPointer {
		t.Error("a pointer to an IP literal was not refused as bad_scp")
	}
}

// hostileDirectory accepts TLS as dc1 and answers whatever it is sent
// with answer.
func hostileDirectory(t *testing.T, e *lab.Estate, s *probe.Settings, answer []byte) {
	t.Helper()
	cert, err := e.CA.Issue(lab.CertSpec{Names: []string{dcHost}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				if _, err := c.Read(buf); err != nil {
					return
				}
				_, _ = c.Write(answer)
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	ip, err := e.IPOf(dcHost)
	if err != nil {
		t.Fatal(err)
	}
	s.ConnectTo = e.ConnectTo()
	s.ConnectTo[ip+":636"] = ln.Addr().String()
}

func TestHostileDirectoriesFailTheLookupWithinBounds(t *testing.T) {
	huge := append([]byte{0x30, 0x84, 0x00, 0x40, 0x00, 0x00}, bytes.Repeat([]byte{0x04, 0x00}, 64<<10)...)
	cases := []struct {
		name   string
		answer []byte
		class  probe.ErrorClass
	}{
		{"a message declared at 4 MiB of empty strings", huge, probe.ClassResponseTooLarge},
		{"garbage", bytes.Repeat([]byte{0xff}, 512), probe.ClassConnectionError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEstate(t)
			mb, _, err := e.AddOnPremises("contoso.test", "sophie", insidePass)
			if err != nil {
				t.Fatal(err)
			}
			s := settingsFor(e, mb)
			s.StepTimeout = 2 * time.Second
			s.Methods = []probe.Method{probe.MethodSCP, probe.MethodAutodiscoverDomain}
			s.LDAP = probe.LDAPSettings{URL: "ldaps://" + dcHost, BindDN: "CN=svc-monitor,CN=Users,DC=corp,DC=contoso,DC=test", Password: "Passw0rd!"}
			hostileDirectory(t, e, &s, c.answer)
			started := time.Now()
			res := mustRun(t, mb.Address, s)
			if took := time.Since(started); took > 10*time.Second {
				t.Errorf("the probe took %s", took)
			}
			bind := stepsOf(res, probe.MethodSCP, dcHost)
			if n := len(bind); n == 0 || bind[n-1].Name != probe.StepLDAPBind || bind[n-1].ErrorClass != c.class {
				t.Fatalf("directory steps %s, want ldap_bind(%s) last\n%s", stepNames(bind), c.class, res.Log())
			}
			if !res.Success {
				t.Errorf("the chain should fall back to the autodiscover host:\n%s", res.Log())
			}
		})
	}
}

func TestSCPLookupFailuresAreClassedStepsAndTheChainFallsBack(t *testing.T) {
	cases := []struct {
		name      string
		dir       lab.DirectoryOptions
		noDir     bool
		blackHole bool
		untrusted bool
		settings  func(*probe.Settings, *lab.Directory)
		step      probe.StepName
		class     probe.ErrorClass
		detail    string
	}{
		{name: "directory down", noDir: true, step: probe.StepTCP, class: probe.ClassRefused},
		{name: "directory never answers", blackHole: true, step: probe.StepTLSHandshake, class: probe.ClassTimeout},
		{name: "bind refused", settings: func(s *probe.Settings, _ *lab.Directory) { s.LDAP.Password = "wrong" },
			step: probe.StepLDAPBind, class: probe.ClassLDAPBindFailed, detail: "Invalid Credentials"},
		{name: "anonymous search refused", settings: func(s *probe.Settings, _ *lab.Directory) { s.LDAP.BindDN, s.LDAP.Password = "", "" },
			step: probe.StepSCPLookup, class: probe.ClassLDAPError},
		{name: "no SCP at all", step: probe.StepSCPLookup, class: probe.ClassNoSCP},
		{name: "thousands of SCPs", dir: lab.DirectoryOptions{Bulk: 1500}, step: probe.StepSCPLookup, class: probe.ClassTooManyRecords, detail: "more than 200"},
		{name: "bindings that are no usable URL", dir: lab.DirectoryOptions{Objects: []lab.SCPObject{
			{Name: "EX-TEXT", Binding: "mail.corp.contoso.test"},
			{Name: "EX-HTTP", Binding: "http://mail.corp.contoso.test/Autodiscover/Autodiscover.xml"},
			{Name: "EX-OWA", Binding: "https://mail.corp.contoso.test/owa/"},
			{Name: "EX-IP", Binding: "https://127.0.0.1/Autodiscover/Autodiscover.xml"},
			{Name: "EX-EMPTY"},
		}}, step: probe.StepSCPLookup, class: probe.ClassBadSCP, detail: "5 unusable"},
		{name: "directory certificate untrusted", untrusted: true, step: probe.StepCertTrust, class: probe.ClassUntrusted},
		{name: "base DN that does not exist", settings: func(s *probe.Settings, d *lab.Directory) { s.LDAP.BaseDN = "CN=Configuration,DC=nowhere" },
			step: probe.StepSCPLookup, class: probe.ClassLDAPError, detail: "No Such Object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			requireSlapd(t)
			e := newEstate(t)
			mb, _, err := e.AddOnPremises("contoso.test", "sophie", insidePass)
			if err != nil {
				t.Fatal(err)
			}
			var d *lab.Directory
			switch {
			case c.noDir:
				if _, err := e.IPOf(dcHost); err != nil {
					t.Fatal(err)
				}
			case c.blackHole:
				if err := e.BlackHole(dcHost, 636); err != nil {
					t.Fatal(err)
				}
			default:
				o := c.dir
				if c.untrusted {
					other, err := lab.NewCA("another CA")
					if err != nil {
						t.Fatal(err)
					}
					o.CA = other
				}
				d = startDirectory(t, e, dcHost, o)
			}
			s := settingsFor(e, mb)
			s.StepTimeout = 2 * time.Second
			s.Methods = []probe.Method{probe.MethodSCP, probe.MethodAutodiscoverDomain}
			s.LDAP = probe.LDAPSettings{URL: "ldaps://" + dcHost, BindDN: "CN=svc-monitor,CN=Users,DC=corp,DC=contoso,DC=test", Password: "Passw0rd!"}
			if d != nil {
				s.LDAP.BindDN, s.LDAP.Password = d.BindDN(), d.BindPassword()
			}
			if c.settings != nil {
				c.settings(&s, d)
			}
			started := time.Now()
			res := mustRun(t, mb.Address, s)
			if took := time.Since(started); took > 15*time.Second {
				t.Errorf("the probe took %s", took)
			}
			var failed *probe.Step
			for i, st := range res.Steps {
				if st.Method == probe.MethodSCP && !st.OK && st.Name == c.step && failed == nil {
					failed = &res.Steps[i]
				}
			}
			if failed == nil || failed.Name != c.step || failed.ErrorClass != c.class || !strings.Contains(failed.Detail, c.detail) {
				t.Fatalf("first failed SCP step %+v, want %s with %s and %q\n%s", failed, c.step, c.class, c.detail, res.Log())
			}
			if !res.Success || !strings.Contains(res.FinalURL, "autodiscover.contoso.test") {
				t.Errorf("the chain should fall back to the autodiscover host: success %v at %s", res.Success, res.FinalURL)
			}
			if c.name == "bindings that are no usable URL" {
				var records int
				for _, st := range res.Steps {
					if st.Name == probe.StepSCPRecord && st.ErrorClass == probe.ClassBadSCP {
						records++
					}
				}
				if records != 5 {
					t.Errorf("%d scp_record steps, want one per unusable SCP", records)
				}
				for _, rq := range e.Requests() {
					if strings.Contains(rq.Host, "corp.contoso.test") {
						t.Errorf("an unusable SCP URL was requested: %s", rq.Host)
					}
				}
			}
		})
	}
}

func TestRefusedBindStartsTheBackoff(t *testing.T) {
	_, _, s := insideEstate(t, lab.DirectoryOptions{Objects: []lab.SCPObject{{Name: "EX01", Binding: healthySCP}}})
	s.LDAP.Password = "stale-password"
	guard := probe.NewBackoff(time.Hour, time.Hour)
	p, err := probe.NewProber(s, probe.Env{Guard: guard})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []probe.ErrorClass{probe.ClassLDAPBindFailed, probe.ClassAuthBackoff} {
		res, _ := p.Run(context.Background(), probe.Target{Address: insideUser})
		bind := stepsOf(res, probe.MethodSCP, dcHost)
		if n := len(bind); n == 0 || bind[n-1].Name != probe.StepLDAPBind || bind[n-1].ErrorClass != want {
			t.Fatalf("probe %d: directory steps %s, want ldap_bind(%s) last", i+1, stepNames(bind), want)
		}
	}
}

func TestSCPLookupResultAndStepLogHoldNoBindPassword(t *testing.T) {
	_, _, s := insideEstate(t, lab.DirectoryOptions{Objects: []lab.SCPObject{{Name: "EX01", Binding: healthySCP}}})
	res := mustRun(t, insideUser, s)
	js, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	out := res.Log() + string(js) + fmt.Sprintf("%+v %v %#v", res, s.LDAP, s.LDAP)
	if strings.Contains(out, s.LDAP.Password) {
		t.Error("the bind password shows in the result or the settings' rendering")
	}
}
