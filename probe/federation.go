package probe

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The federation check asks, anonymously as Exchange Online does for
// hybrid free/busy through the organization relationship, for the
// federation information of the mailbox's domain, then checks the
// autodiscover.svc/WSSecurity endpoint Exchange Online calls with its
// federation token.

// runFederation runs GetFederationInformation for the mailbox's domain
// over the POX chain's candidates.
func (r *run) runFederation(ctx context.Context) {
	r.res.Federation = &FederationResult{}
	s := r.sub(flavourFederation)
	out := s.tryMethods(ctx, r.homeDomain)
	r.tlsHosts = s.tlsHosts
	f := r.res.Federation
	f.OK = f.ApplicationURI != "" && f.ErrorCode == "" && f.WSSecurityOK
	if !f.OK && f.Reason == "" {
		f.Reason = Printable(cmp.Or(out.reason, s.errorReason, s.failureSummary(ctx)), maxReasonBytes)
	}
}

// actFederation reads a GetFederationInformation answer.
func (r *run) actFederation(t target, addr string, u *url.URL, ans *soapAnswer, started time.Time) outcome {
	resp := ans.message.child("Response")
	if resp == nil {
		r.rec.record(t, StepParse, started, addr, failf(ClassNotAutodiscover, "the GetFederationInformation answer holds no Response"), "")
		return outcome{next: nextCandidate}
	}
	f := r.res.Federation
	if code := resp.childText("ErrorCode"); code != "" && code != "NoError" {
		f.URL = u.String()
		return r.soapError(t, addr, started, code, resp.childText("ErrorMessage"), "")
	}
	uri := Printable(resp.childText("ApplicationUri"), maxFieldBytes)
	if uri == "" {
		r.rec.record(t, StepParse, started, addr, failf(ClassNoSettings, "NoError, but the answer names no ApplicationUri"), "")
		return outcome{next: nextCandidate}
	}
	f.URL, f.ApplicationURI = u.String(), uri
	f.ErrorCode, f.ErrorMessage = "", "" // an earlier candidate's, with continue_after_error
	for _, d := range resp.child("Domains").children() {
		if len(f.Domains) < maxFederationValues && strings.EqualFold(d.local, "Domain") && d.text != "" {
			f.Domains = append(f.Domains, Printable(d.text, 253))
		}
	}
	for _, ti := range resp.child("TokenIssuers").children() {
		if len(f.TokenIssuers) < maxFederationValues && strings.EqualFold(ti.local, "TokenIssuer") {
			f.TokenIssuers = append(f.TokenIssuers, TokenIssuer{URI: Printable(ti.childText("Uri"), maxFieldBytes), Endpoint: Printable(ti.childText("Endpoint"), maxFieldBytes)})
		}
	}
	detail := fmt.Sprintf("federation information returned; ApplicationUri %s", uri)
	if len(f.TokenIssuers) > 0 {
		var issuers []string
		for _, ti := range f.TokenIssuers {
			issuers = append(issuers, ti.URI+" at "+ti.Endpoint)
		}
		detail += "; token issuers " + strings.Join(issuers, ", ")
	}
	if len(f.Domains) > 0 {
		detail += "; federated domains " + strings.Join(f.Domains, ", ")
	}
	if ans.serverVersion != "" {
		detail += "; server version " + ans.serverVersion
	}
	r.rec.record(t, StepParse, started, addr, nil, detail)
	return outcome{next: stop}
}

// checkWSSecurity POSTs an unauthenticated GetFederationInformation to the
// WSSecurity endpoint of the host that answered, on the same connection.
// Exchange answers what it answers every call without a WS-Security
// header: HTTP 500 with the SOAP fault InvalidSecurity. HTTP
// authentication in front of it (a 401) means WSSecurityAuthentication is
// off on the Autodiscover virtual directory, and Exchange Online's calls
// are refused.
func (r *run) checkWSSecurity(ctx context.Context, t target, hc *httpConn, u *url.URL, addr string) {
	f := r.res.Federation
	ws := *u
	ws.Path = strings.TrimSuffix(u.Path, "/") + "/WSSecurity"
	ws.RawPath = ""
	f.WSSecurityURL = ws.String()
	wt := t
	wt.url = ws.String()
	started := time.Now()
	resp, err := hc.roundTrip(ctx, newSOAPPOST(&ws, &r.p.s, "", soapActionGetFederationInformation), buildGetFederationInformation(&ws, r.homeDomain), r.p.s.stepTimeout())
	if err != nil {
		r.rec.record(wt, StepWSSecurity, started, addr, err, "POST "+ws.String())
		f.Reason = "the WSSecurity endpoint " + ws.String() + " did not answer: " + err.Detail
		return
	}
	verdict, werr := judgeWSSecurity(resp)
	r.rec.record(wt, StepWSSecurity, started, addr, werr, verdict)
	f.WSSecurityOK = werr == nil
	if werr != nil {
		f.Reason = Printable("the WSSecurity endpoint "+ws.String()+" that Exchange Online calls for free/busy: "+werr.Detail, maxReasonBytes)
	}
}

// judgeWSSecurity says whether an unauthenticated call to WSSecurity got
// the answer of Exchange's WS-Security stack.
func judgeWSSecurity(resp *response) (string, *Error) {
	status := describeStatus(resp)
	if resp.status == http.StatusUnauthorized {
		return status, failf(ClassUnauthorized, "HTTP 401 offering %s: the endpoint asks for HTTP authentication, so WS-Security authentication is off on the Autodiscover virtual directory (Set-AutodiscoverVirtualDirectory -WSSecurityAuthentication $true)", orNone(schemeNames(ParseChallenges(resp.header))))
	}
	ans, err := parseSOAPAnswer(resp.body, "GetFederationInformationResponseMessage")
	switch {
	case err == nil && ans.fault != nil:
		if strings.Contains(strings.ToLower(ans.fault.code), "invalidsecurity") {
			return status + "; " + ans.fault.String() + ": the WS-Security stack answers, as Exchange does to a call without a token", nil
		}
		return status + "; " + ans.fault.String() + ": a SOAP stack answers (Exchange says InvalidSecurity here)", nil
	case err == nil:
		return status, failf(ClassNotProtocol, "the endpoint answered a call without a WS-Security token with settings: it does not check tokens as Exchange does")
	case statusClass(resp) != "":
		return status, failf(statusClass(resp), "%s", statusReason(resp))
	}
	return status, failf(ClassNotProtocol, "the answer is no SOAP fault (%s)", err.Detail)
}
