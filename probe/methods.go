package probe

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// The four candidate methods, in the run's flavour. Each returns the
// outcome of its candidate: nextCandidate when it led nowhere.

// tryURL POSTs to u and follows URL redirects (3xx, redirectUrl) from it.
// A chain of redirects that leads nowhere spends no hop: the next
// candidate of the address is tried at the hop this one started at.
func (r *run) tryURL(ctx context.Context, method Method, u *url.URL) outcome {
	key := r.visitKey(u)
	if r.visitedURLs[key] {
		// Already tried for this address: nothing new.
		return outcome{next: nextCandidate}
	}
	r.visitedURLs[key] = true
	hop := r.hop
	for {
		out := r.postTo(ctx, method, u)
		if out.next != follow {
			if out.next == nextCandidate {
				r.hop = hop
			}
			return out
		}
		method, u = r.fl.method(MethodRedirect), out.url
		r.visitedURLs[r.visitKey(u)] = true
	}
}

// visitKey is the visited-set key of u for the address being discovered:
// a URL tried for one address is new for another (an alias redirected to
// its primary address POSTs again to the same server).
func (r *run) visitKey(u *url.URL) string {
	return strings.ToLower(r.mailbox) + " " + normalizeURL(u)
}

// tryHTTPRedirect is the third method: an unauthenticated GET on port 80
// whose only useful answer is a redirect to an HTTPS Autodiscover URL.
// Every flavour asks for autodiscover.xml, as [MS-OXWSADISC] 3.1.5.1
// does; the SOAP ones then ask the autodiscover.svc of the host named.
func (r *run) tryHTTPRedirect(ctx context.Context, domain string) outcome {
	u := &url.URL{Scheme: "http", Host: "autodiscover." + domain, Path: "/autodiscover/autodiscover.xml"}
	t := r.newTarget(r.fl.method(MethodHTTPRedirect), u)
	addrs, ok := r.resolve(ctx, t)
	if !ok {
		return outcome{next: nextCandidate}
	}
	conn, addr := r.connect(ctx, r.rec, t, addrs)
	if conn == nil {
		return outcome{next: nextCandidate}
	}
	hc := newHTTPConn(conn, r.p.s.maxBodyBytes(), nil)
	defer hc.Close()
	started := time.Now()
	resp, err := hc.roundTrip(ctx, newGET(u, &r.p.s), nil, r.p.s.stepTimeout())
	if err != nil {
		r.rec.record(t, StepHTTPGet, started, addr, err, "")
		return outcome{next: nextCandidate}
	}
	if !isRedirectStatus(resp.status) {
		r.rec.record(t, StepHTTPGet, started, addr, failf(ClassNoRedirect, "%s: no redirect", describeStatus(resp)), "")
		return outcome{next: nextCandidate}
	}
	r.rec.record(t, StepHTTPGet, started, addr, nil, fmt.Sprintf("HTTP %d, Location %s", resp.status, truncate(resp.header.Get("Location"), 200)))
	started = time.Now()
	to, serr := resolveLocation(u, resp.header.Get("Location"))
	if serr != nil {
		r.rec.record(t, StepRedirect, started, addr, serr, "")
		return outcome{next: nextCandidate}
	}
	rule := poxRedirect
	if r.fl != flavourPOX {
		if err := checkServerURL(to, anyAutodiscoverRedirect, r.p.s.AllowedPorts); err != nil {
			r.rec.record(t, StepRedirect, started, addr, err, "")
			return outcome{next: nextCandidate}
		}
		to, rule = asSOAPURL(to), soapRedirect
	}
	hop := r.hop
	out := r.followURL(t, started, addr, to, rule, fmt.Sprintf("HTTP %d", resp.status))
	if out.next != follow {
		return out
	}
	if out = r.tryURL(ctx, r.fl.method(MethodRedirect), to); out.next == nextCandidate {
		r.hop = hop
	}
	return out
}

// trySRV is the fourth method: _autodiscover._tcp.<domain>, lowest priority
// first, port 443 only.
func (r *run) trySRV(ctx context.Context, domain string) outcome {
	name := "_autodiscover._tcp." + domain
	t := target{hop: r.hop, method: r.fl.method(MethodSRV), mailbox: r.mailbox, host: name}
	started := time.Now()
	records, err := r.p.dns.lookupSRV(ctx, r.budget, name)
	if err != nil {
		r.rec.record(t, StepSRVLookup, started, "", err, "")
		return outcome{next: nextCandidate}
	}
	usable, notes := usableSRV(records)
	if len(usable) == 0 {
		r.rec.record(t, StepSRVLookup, started, "", failf(ClassNoUsableSRV, "no record with port 443"), strings.Join(notes, "; "))
		return outcome{next: nextCandidate}
	}
	r.rec.record(t, StepSRVLookup, started, "", nil, strings.Join(notes, "; "))
	for _, rec := range usable {
		if ctx.Err() != nil {
			break
		}
		if out := r.tryURL(ctx, t.method, r.candidateURL(rec.Target)); out.next != nextCandidate {
			return out
		}
	}
	return outcome{next: nextCandidate}
}

// usableSRV keeps the records the probe may follow, with a note per
// record for the step log saying which were skipped and why.
func usableSRV(records []srvTarget) ([]srvTarget, []string) {
	var usable []srvTarget
	var notes []string
	for _, rec := range records {
		desc := fmt.Sprintf("%s:%d (priority %d, weight %d)", rec.Target, rec.Port, rec.Priority, rec.Weight)
		switch {
		case rec.Target == "" || rec.Target == ".":
			notes = append(notes, desc+" skipped: target \".\" means no service")
		case rec.Port != 443:
			notes = append(notes, desc+" skipped: only port 443 is used")
		default:
			if err := checkServerHost(rec.Target, "SRV target"); err != nil {
				notes = append(notes, desc+" skipped: "+err.Detail)
				continue
			}
			notes = append(notes, desc)
			usable = append(usable, rec)
		}
	}
	return usable, notes
}
