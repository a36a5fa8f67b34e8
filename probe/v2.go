package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxV2Redirects caps v2 redirects (Exchange Online's 302 to the
// on-premises v2 URL of a hybrid mailbox is one).
const maxV2Redirects = 3

// v2Answer is the JSON of an Autodiscover v2 answer or error.
type v2Answer struct {
	Protocol     string `json:"Protocol"`
	URL          string `json:"Url"`
	ErrorCode    string `json:"ErrorCode"`
	ErrorMessage string `json:"ErrorMessage"`
}

// V2Method is the step method of the v2 query for protocol.
func V2Method(protocol string) Method {
	return Method(MethodV2Prefix + strings.ToLower(protocol))
}

// runV2 asks Autodiscover v2 for every configured protocol, anonymously,
// trying the hosts in order until one answers. It asks for the address the
// run started with, whatever redirectAddr did to the POX chain.
func (r *run) runV2(ctx context.Context) {
	for _, protocol := range r.p.s.v2Protocols() {
		var res V2Result
		for _, host := range r.p.s.v2Hosts() {
			if ctx.Err() != nil {
				break
			}
			res = r.queryV2(ctx, protocol, host)
			if res.OK {
				break
			}
		}
		r.res.V2 = append(r.res.V2, res)
	}
}

// queryV2 runs one protocol's query against one host, following redirects
// to other v2 URLs up to maxV2Redirects.
func (r *run) queryV2(ctx context.Context, protocol, host string) V2Result {
	res := V2Result{Protocol: protocol}
	u := &url.URL{
		Scheme:   "https",
		Host:     host,
		Path:     "/autodiscover/autodiscover.json/v1.0/" + r.res.Mailbox,
		RawQuery: url.Values{"Protocol": {protocol}}.Encode(),
	}
	visited := map[string]bool{}
	method := V2Method(protocol)
	for hop := 0; ; hop++ {
		visited[normalizeURL(u)] = true
		t := target{hop: hop, method: method, mailbox: r.res.Mailbox, host: strings.ToLower(u.Hostname()), port: portOf(u), url: u.String()}
		res.Host = t.host
		answer, status, loc := r.getV2(ctx, t, u)
		switch {
		case answer != nil && status == http.StatusOK:
			res.URL, res.OK = Printable(answer.URL, maxFieldBytes), true
			return res
		case answer != nil:
			res.ErrorCode, res.ErrorMessage = Printable(answer.ErrorCode, maxFieldBytes), Printable(answer.ErrorMessage, maxFieldBytes)
			return res
		case loc == nil && hop > 0 && inDomain(t.host, r.homeDomain) && !inDomain(host, r.homeDomain):
			r.unknownToExchangeOnline(t, host, &res)
			return res
		case loc == nil:
			return res
		}
		started := time.Now()
		err := checkServerURL(loc, v2Redirect, r.p.s.AllowedPorts)
		switch {
		case err != nil:
		case hop+1 > maxV2Redirects:
			err = failf(ClassTooManyRedirects, "more than %d v2 redirects", maxV2Redirects)
		case visited[normalizeURL(loc)]:
			err = failf(ClassLoop, "v2 redirect back to %s", redactURL(loc))
		}
		if err != nil {
			r.rec.record(t, StepRedirect, started, "", err, "")
			return res
		}
		r.rec.record(t, StepRedirect, started, "", nil, fmt.Sprintf("HTTP 302 to %s (v2 hop %d of at most %d)", redactURL(loc), hop+1, maxV2Redirects))
		res.Redirects++
		u = loc
	}
}

// unknownToExchangeOnline reports a v2 chain that ended where Exchange
// Online sends an address it does not know: back to the mailbox's own
// domain, which did not answer.
func (r *run) unknownToExchangeOnline(t target, frontEnd string, res *V2Result) {
	err := failf(ClassV2UnknownAddress, "%s does not know %s: it sent the client back to %s, which gave no v2 answer", frontEnd, r.res.Mailbox, t.host)
	r.rec.record(t, StepRedirect, time.Now(), "", err, "")
	res.ErrorCode, res.ErrorMessage = "UnknownAddress", err.Detail
}

// getV2 connects, checks the certificate and GETs one v2 URL. It returns
// the parsed answer (200 or a JSON error), or the Location of a redirect.
func (r *run) getV2(ctx context.Context, t target, u *url.URL) (*v2Answer, int, *url.URL) {
	addrs, ok := r.resolve(ctx, t)
	if !ok {
		return nil, 0, nil
	}
	r.noteTLSHost(t, addrs)
	tlsOut, addr := r.secure(ctx, t, addrs)
	if tlsOut == nil {
		return nil, 0, nil
	}
	if !tlsOut.certOK() && !r.p.s.InsecureSkipVerify {
		_ = tlsOut.conn.Close()
		return nil, 0, nil
	}
	hc := newHTTPConn(tlsOut.conn, r.p.s.maxBodyBytes(), nil)
	defer hc.Close()
	started := time.Now()
	req := newGET(u, &r.p.s)
	req.Header.Set("Accept", "application/json")
	resp, err := hc.roundTrip(ctx, req, nil, r.p.s.stepTimeout())
	if err != nil {
		r.rec.record(t, StepRequest, started, addr, err, "GET "+u.String())
		return nil, 0, nil
	}
	detail := describeStatus(resp)
	if d := diagnosticHeaders(resp.header); d != "" {
		detail += "; " + d
	}
	if isRedirectStatus(resp.status) {
		r.rec.record(t, StepRequest, started, addr, nil, detail)
		loc, serr := resolveLocation(u, resp.header.Get("Location"))
		if serr != nil {
			r.rec.record(t, StepRedirect, time.Now(), addr, serr, "")
			return nil, 0, nil
		}
		return nil, resp.status, loc
	}
	if resp.status != http.StatusOK && resp.status != http.StatusBadRequest {
		r.rec.record(t, StepRequest, started, addr, failf(statusClass(resp), "%s", statusReason(resp)), detail)
		return nil, 0, nil
	}
	r.rec.record(t, StepRequest, started, addr, nil, detail)
	started = time.Now()
	ans, perr := parseV2Answer(resp.status, resp.body)
	if perr != nil {
		r.rec.record(t, StepParse, started, addr, perr, "")
		if perr.Class == ClassV2Error {
			return ans, http.StatusBadRequest, nil
		}
		return nil, 0, nil
	}
	r.rec.record(t, StepParse, started, addr, nil, fmt.Sprintf("Protocol %s: %s", ans.Protocol, ans.URL))
	return ans, http.StatusOK, nil
}

// parseV2Answer reads a v2 body: a 200 must carry an https Url that passes
// the server-URL rules, a 400 (or any answer with an ErrorCode) is a v2
// error. The answer is returned with a v2_error so the caller can report
// its code.
func parseV2Answer(status int, body []byte) (*v2Answer, *Error) {
	var ans v2Answer
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, failf(ClassBadPayload, "not a v2 JSON answer: %s", truncate(err.Error(), 80))
	}
	if status == http.StatusBadRequest || ans.ErrorCode != "" {
		return &ans, failf(ClassV2Error, "ErrorCode %s: %s", truncate(ans.ErrorCode, 60), truncate(ans.ErrorMessage, 160))
	}
	u, err := url.Parse(ans.URL)
	if ans.URL == "" || err != nil || checkServerURL(u, v2Endpoint, nil) != nil {
		return nil, failf(ClassBadPayload, "the answer has no https Url (%q)", truncate(ans.URL, 80))
	}
	return &ans, nil
}

func (r *run) v2OK() bool {
	for _, v := range r.res.V2 {
		if !v.OK {
			return false
		}
	}
	return len(r.res.V2) > 0
}

func (r *run) v2Failure() string {
	var parts []string
	for _, v := range r.res.V2 {
		if v.OK {
			continue
		}
		switch {
		case v.ErrorCode == "UnknownAddress":
			parts = append(parts, v.Protocol+": "+v.ErrorMessage)
		case v.ErrorCode != "":
			parts = append(parts, fmt.Sprintf("%s: %s", v.Protocol, v.ErrorCode))
		default:
			parts = append(parts, v.Protocol+": no answer")
		}
	}
	if len(parts) == 0 {
		return "no protocol was asked"
	}
	return strings.Join(parts, ", ")
}

// v2AutodiscoverV1 is the POX URL v2 returned for AutodiscoverV1 when v2
// ran before the chain, if it passes the rules of a redirect target.
func (r *run) v2AutodiscoverV1() *url.URL {
	methods := r.p.s.methods()
	if methods[0] != MethodV2JSON {
		return nil
	}
	for _, v := range r.res.V2 {
		if !v.OK || !strings.EqualFold(v.Protocol, "AutodiscoverV1") {
			continue
		}
		u, err := url.Parse(v.URL)
		if err != nil || checkServerURL(u, poxRedirect, r.p.s.AllowedPorts) != nil {
			return nil
		}
		return u
	}
	return nil
}
