package probe

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// checkExpectations compares the result with the target's expectations,
// records a verdict for each and returns the names of those not met. A
// failed expectation fails the probe: the chain works but ends somewhere
// else.
func (r *run) checkExpectations() []string {
	e := r.target.Expect
	if e == nil {
		return nil
	}
	res := r.res
	add := func(name string, ok bool, format string, args ...any) {
		res.Expectations = append(res.Expectations, ExpectationResult{Name: name, OK: ok, Detail: Printable(fmt.Sprintf(format, args...), maxDetailBytes)})
	}
	if e.EndpointHost != "" {
		got := hostOf(res.FinalURL)
		add(ExpectEndpointHost, strings.EqualFold(got, e.EndpointHost), "the Autodiscover URL that answered is on %s, expected %s", orNothing(got), e.EndpointHost)
	}
	if e.EWSURLHost != "" {
		got := hostOf(res.Response.EWSURL())
		add(ExpectEWSURLHost, strings.EqualFold(got, e.EWSURLHost), "the EWS URL points at %s, expected %s", orNothing(got), e.EWSURLHost)
	}
	if e.MaxRedirects != nil {
		add(ExpectMaxRedirects, res.RedirectHops <= *e.MaxRedirects, "%d redirect hop(s), expected at most %d", res.RedirectHops, *e.MaxRedirects)
	}
	if len(e.Protocols) > 0 {
		have := returnedProtocols(res.Response)
		var missing []string
		for _, p := range e.Protocols {
			if !slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, p) }) {
				missing = append(missing, p)
			}
		}
		add(ExpectProtocols, len(missing) == 0, "returned protocols [%s], expected [%s]%s", strings.Join(have, " "), strings.Join(e.Protocols, " "), missingNote(missing))
	}
	if e.CertMinDays > 0 {
		host, days := r.earliestCertificate()
		if host == "" {
			add(ExpectCertMinDays, false, "no certificate was seen, expected at least %d days left", e.CertMinDays)
		} else {
			add(ExpectCertMinDays, days >= float64(e.CertMinDays), "the certificate of %s has %.1f days left, expected at least %d", host, days, e.CertMinDays)
		}
	}
	if e.SMTPAddress != "" {
		got := ""
		if res.Response != nil {
			got = res.Response.User.AutoDiscoverSMTPAddress
		}
		add(ExpectSMTPAddress, strings.EqualFold(got, e.SMTPAddress), "the primary address is %s, expected %s", orNothing(got), e.SMTPAddress)
	}
	if e.Endpoints {
		var failing []string
		for _, c := range res.Endpoints {
			if !c.OK {
				failing = append(failing, c.What+" at "+c.URL)
			}
		}
		switch {
		case len(res.Endpoints) == 0:
			add(ExpectEndpoints, false, "no endpoint was checked: the answer returned no URL of the module's endpoints")
		case len(failing) > 0:
			add(ExpectEndpoints, false, "%d of %d endpoint checks failed: %s", len(failing), len(res.Endpoints), strings.Join(failing, ", "))
		default:
			add(ExpectEndpoints, true, "all %d endpoint checks passed", len(res.Endpoints))
		}
	}
	if e.FederationApplicationURI != "" {
		f := res.Federation
		switch {
		case f == nil:
			add(ExpectFederationAppURI, false, "the federation check did not run (the module's federation is off), expected ApplicationUri %s", e.FederationApplicationURI)
		case f.ApplicationURI == "":
			add(ExpectFederationAppURI, false, "GetFederationInformation returned no ApplicationUri, expected %s", e.FederationApplicationURI)
		default:
			add(ExpectFederationAppURI, strings.EqualFold(f.ApplicationURI, e.FederationApplicationURI), "GetFederationInformation returned ApplicationUri %s, expected %s", f.ApplicationURI, e.FederationApplicationURI)
		}
	}
	if len(e.SCPHosts) > 0 {
		r.expectSCPHosts(e.SCPHosts, add)
	}
	var failed []string
	for _, x := range res.Expectations {
		if !x.OK {
			failed = append(failed, x.Name)
		}
	}
	return failed
}

func orNothing(s string) string {
	if s == "" {
		return "nothing (no answer)"
	}
	return s
}

func missingNote(missing []string) string {
	if len(missing) == 0 {
		return ""
	}
	return "; missing " + strings.Join(missing, " ")
}

func returnedProtocols(resp *Response) []string {
	if resp == nil {
		return nil
	}
	var out []string
	for _, p := range resp.Protocols {
		if p.Type != "" && !slices.Contains(out, p.Type) {
			out = append(out, p.Type)
		}
	}
	for _, m := range resp.MobileServers {
		if m.Type != "" && !slices.Contains(out, m.Type) {
			out = append(out, m.Type)
		}
	}
	return out
}

// earliestCertificate finds the certificate of the chain (and of the
// per-address checks) that expires first. Hosts only an endpoint URL
// named are left out: cert_min_days is about Autodiscover, and the
// endpoints' certificates have the certificate alerts.
func (r *run) earliestCertificate() (string, float64) {
	host, earliest := "", time.Time{}
	consider := func(c CertInfo) {
		if earliest.IsZero() || c.NotAfter.Before(earliest) {
			host, earliest = c.Host, c.NotAfter
		}
	}
	for _, c := range r.res.Certificates {
		if !c.Endpoint {
			consider(c)
		}
	}
	for _, ac := range r.res.AddressChecks {
		if ac.Cert != nil {
			consider(*ac.Cert)
		}
	}
	if host == "" {
		return "", math.Inf(-1)
	}
	return host, earliest.Sub(r.p.now()).Hours() / 24
}

// expectSCPHosts compares the hosts the SCPs name with the expected ones
// both ways: a host nobody expects is a stale SCP (a decommissioned
// server's, after a migration); an expected one missing is a lost SCP.
func (r *run) expectSCPHosts(want []string, add func(name string, ok bool, format string, args ...any)) {
	s := r.res.SCP
	if s == nil || (!s.OK && s.Records == 0) {
		add(ExpectSCPHosts, false, "the SCP lookup found no SCP URL, expected SCPs naming %s", strings.Join(want, ", "))
		return
	}
	var got, stale, missing []string
	for _, u := range s.URLs {
		if !slices.Contains(got, u.Host) {
			got = append(got, u.Host)
		}
	}
	for _, h := range got {
		if !slices.ContainsFunc(want, func(w string) bool { return strings.EqualFold(w, h) }) {
			stale = append(stale, h)
		}
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(h string) bool { return strings.EqualFold(w, h) }) {
			missing = append(missing, w)
		}
	}
	detail := fmt.Sprintf("the SCPs name %s, expected %s", orNothing(strings.Join(got, ", ")), strings.Join(want, ", "))
	if len(stale) > 0 {
		detail += "; not expected (stale?): " + strings.Join(stale, ", ")
	}
	if len(missing) > 0 {
		detail += "; missing: " + strings.Join(missing, ", ")
	}
	add(ExpectSCPHosts, len(stale) == 0 && len(missing) == 0, "%s", detail)
}
