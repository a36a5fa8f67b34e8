package probe

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// SCPResult is what the SCP lookup (method scp) found in the directory.
type SCPResult struct {
	// Directory is the LDAP URL of the configured directory.
	Directory string
	// Site is the site the lookup preferred; empty for none.
	Site string
	// Records counts the SCP URL objects found, over every directory
	// asked; Pointers the SCP pointers.
	Records  int
	Pointers int
	// URLs are the usable Autodiscover URLs, in the order they are tried.
	URLs []SCPURL
	// OK reports a lookup that found at least one usable URL.
	OK bool
}

// SCPURL is one Autodiscover URL an SCP named.
type SCPURL struct {
	URL string
	// Host is its lower-case host.
	Host string
	// Scope is where the client-site rule put it: SCPScopeSite,
	// SCPScopeNone or SCPScopeOtherSite.
	Scope string
	// Tried reports that the chain POSTed to it; OK that every step of
	// it passed (it answered with settings or a redirect).
	Tried, OK bool
}

// SCP scopes, in the order the lookup tries them.
const (
	SCPScopeSite      = "site"       // the SCP names the exporter's site
	SCPScopeNone      = "unscoped"   // the SCP names no site
	SCPScopeOtherSite = "other_site" // the SCP names only other sites
)

// scpFound is what one directory returned, sorted.
type scpFound struct {
	byScope        [3][]SCPURL
	domainPointers []*url.URL
	otherPointers  []*url.URL
	records        int
	pointers       int
}

func (f *scpFound) urls() []SCPURL { return slices.Concat(f.byScope[0], f.byScope[1], f.byScope[2]) }

// trySCP is method scp: the Autodiscover URLs the directory's SCPs name,
// in the order domain-joined Outlook tries them.
func (r *run) trySCP(ctx context.Context, domain string) outcome {
	if r.scpURLs == nil {
		// The directory is asked once per probe: after a redirectAddr the
		// same SCPs are asked for the new address.
		r.scpURLs = r.lookupSCP(ctx, domain)
	}
	for _, u := range r.scpURLs {
		if ctx.Err() != nil {
			break
		}
		if out := r.tryURL(ctx, MethodSCP, u); out.next != nextCandidate {
			return out
		}
	}
	return outcome{next: nextCandidate}
}

// lookupSCP asks the configured directory, and the directories its SCP
// pointers name, for the Autodiscover SCPs ([MS-OXDISCO] 3.1.5.1): URLs
// of the exporter's site first, then those of no site, then those of
// other sites. Pointers scoped to the mailbox's domain are searched
// first, as they name the directory that holds the domain's SCPs;
// pointers of no domain are searched after every other entry.
func (r *run) lookupSCP(ctx context.Context, domain string) []*url.URL {
	l := r.p.s.LDAP
	res := &SCPResult{Site: l.Site}
	r.res.SCP = res
	first, err := directoryURL(l.URL, false)
	t := target{hop: r.hop, method: MethodSCP, mailbox: r.mailbox, host: "", url: l.URL}
	if err != nil {
		r.rec.record(t, StepSCPLookup, time.Now(), "", err, "")
		return []*url.URL{}
	}
	res.Directory = first.String()
	asked := map[string]bool{strings.ToLower(first.Host): true}
	found, _ := r.askDirectory(ctx, first, true, domain)
	var ordered []SCPURL
	follow := func(pointers []*url.URL) {
		for _, pu := range pointers {
			if ctx.Err() != nil || len(asked) >= maxDirectories {
				return
			}
			if asked[strings.ToLower(pu.Host)] {
				continue
			}
			asked[strings.ToLower(pu.Host)] = true
			pf, _ := r.askDirectory(ctx, pu, false, domain)
			res.Records += pf.records
			res.Pointers += pf.pointers
			ordered = append(ordered, pf.urls()...)
		}
	}
	res.Records, res.Pointers = found.records, found.pointers
	follow(found.domainPointers)
	ordered = append(ordered, found.urls()...)
	follow(found.otherPointers)

	out := []*url.URL{}
	seen := map[string]bool{}
	for _, s := range ordered {
		u, _ := url.Parse(s.URL)
		if seen[normalizeURL(u)] {
			continue
		}
		seen[normalizeURL(u)] = true
		res.URLs = append(res.URLs, s)
		out = append(out, u)
	}
	res.OK = len(out) > 0
	return out
}

// askDirectory opens, binds and searches one directory, recording its
// steps, and sorts what it found. configured is true for the module's own
// directory, whose base DN the module may set and to which the bind
// password always goes; a pointer's directory gets it only when it is in
// a paired domain.
func (r *run) askDirectory(ctx context.Context, u *url.URL, configured bool, domain string) (scpFound, bool) {
	var found scpFound
	t := target{hop: r.hop, method: MethodSCP, mailbox: r.mailbox, host: strings.ToLower(u.Hostname()), port: portOf(u), url: u.String()}
	d := r.openDirectory(ctx, t, u)
	if d == nil {
		return found, false
	}
	defer d.close()
	if !r.bind(ctx, d, configured || r.inPairedDomain(t.host)) {
		return found, false
	}
	started := time.Now()
	timeout := r.p.s.stepTimeout()
	base := ""
	if configured {
		base = r.p.s.LDAP.BaseDN
	}
	var note string
	if base == "" {
		nc, err := d.configurationNC(timeout)
		if err != nil {
			r.rec.record(t, StepSCPLookup, started, d.addr, err, "")
			return found, false
		}
		base, note = nc, " (configurationNamingContext of the rootDSE)"
	}
	objects, err := d.searchSCPs(ctx, base, timeout)
	if err != nil {
		r.rec.record(t, StepSCPLookup, started, d.addr, err, "")
		return found, false
	}
	bad := r.sortSCPs(&found, objects, t, d.addr, domain)
	detail := fmt.Sprintf("under %s%s: %d SCP URL object(s), %d SCP pointer(s)%s", truncate(base, 160), note, found.records, found.pointers, describeSCPs(&found, r.p.s.LDAP.Site))
	if bad > 0 {
		detail += fmt.Sprintf("; %d unusable", bad)
	}
	if len(found.urls()) == 0 && len(found.domainPointers)+len(found.otherPointers) == 0 {
		class := ClassNoSCP
		if bad > 0 {
			class = ClassBadSCP
		}
		r.rec.record(t, StepSCPLookup, started, d.addr, failf(class, "no usable Autodiscover SCP (keywords %s) under %s", scpURLKeyword, truncate(base, 160)), detail)
		return found, false
	}
	r.rec.record(t, StepSCPLookup, started, d.addr, nil, detail)
	return found, true
}

// maxRecordedBadSCPs bounds the scp_record steps of one directory; the
// lookup's detail counts the rest.
const maxRecordedBadSCPs = 10

// sortSCPs files each object by kind and scope and records an scp_record
// step for each whose binding is unusable. It returns how many were.
func (r *run) sortSCPs(found *scpFound, objects []scpObject, t target, addr, domain string) int {
	site := r.p.s.LDAP.Site
	bad := 0
	reject := func(o scpObject, err *Error) {
		bad++
		if bad <= maxRecordedBadSCPs {
			r.rec.record(t, StepSCPRecord, time.Now(), addr, err, "SCP "+truncate(o.dn, 200))
		}
	}
	for _, o := range objects {
		pointer, isURL, sites, domains := scpKeywords(o.keywords)
		binding := ""
		if len(o.bindings) > 0 {
			binding = strings.TrimSpace(o.bindings[0])
		}
		switch {
		case pointer:
			found.pointers++
			pu, err := pointerURL(binding, r.directoryTLSFromStart())
			if err != nil {
				reject(o, err)
				continue
			}
			switch {
			case slices.ContainsFunc(domains, func(d string) bool { return strings.EqualFold(d, domain) }):
				found.domainPointers = append(found.domainPointers, pu)
			case len(domains) == 0:
				found.otherPointers = append(found.otherPointers, pu)
			}
			// A pointer scoped to other domains names another domain's
			// directory: not this mailbox's.
		case isURL:
			found.records++
			u, err := scpURL(binding, r.p.s.AllowedPorts)
			if err != nil {
				reject(o, err)
				continue
			}
			scope := 1
			switch {
			case site != "" && slices.ContainsFunc(sites, func(s string) bool { return strings.EqualFold(s, site) }):
				scope = 0
			case len(sites) > 0:
				scope = 2
			}
			found.byScope[scope] = append(found.byScope[scope], SCPURL{URL: u.String(), Host: strings.ToLower(u.Hostname()), Scope: []string{SCPScopeSite, SCPScopeNone, SCPScopeOtherSite}[scope]})
		}
	}
	return bad
}

// directoryTLSFromStart says how a pointer's directory is secured: as the
// module's own is.
func (r *run) directoryTLSFromStart() bool {
	return strings.HasPrefix(strings.ToLower(r.p.s.LDAP.URL), "ldaps:")
}

// scpKeywords reads an SCP's keywords: its kind and the sites and domains
// it is scoped to.
func scpKeywords(keywords []string) (pointer, isURL bool, sites, domains []string) {
	for _, k := range keywords {
		k = strings.TrimSpace(k)
		switch {
		case strings.EqualFold(k, scpPointerKeyword):
			pointer = true
		case strings.EqualFold(k, scpURLKeyword):
			isURL = true
		case len(k) > 5 && strings.EqualFold(k[:5], "site="):
			sites = append(sites, strings.TrimSpace(k[5:]))
		case len(k) > 7 && strings.EqualFold(k[:7], "domain="):
			domains = append(domains, strings.TrimSpace(k[7:]))
		}
	}
	return pointer, isURL, sites, domains
}

// scpURL checks an SCP URL as any URL a server names: https, no user
// info, a DNS name, port 443 or an allowed one, an autodiscover.xml path.
func scpURL(binding string, ports []int) (*url.URL, *Error) {
	if binding == "" {
		return nil, failf(ClassBadSCP, "the SCP has no serviceBindingInformation")
	}
	u, err := url.Parse(binding)
	if err != nil || u.Host == "" {
		return nil, failf(ClassBadSCP, "serviceBindingInformation %q is not a URL", truncate(binding, 120))
	}
	if serr := checkServerURL(u, scpRule, ports); serr != nil {
		return nil, &Error{Class: ClassBadSCP, Detail: serr.Detail}
	}
	return u, nil
}

// scpRule is the path rule of an SCP URL: the POX redirect's.
var scpRule = urlRule{what: "SCP URL", path: poxRedirect.path, pathWords: poxRedirect.pathWords}

// describeSCPs lists the URLs found, by scope, for the step log.
func describeSCPs(f *scpFound, site string) string {
	var parts []string
	names := [3]string{"in site " + site, "in no site", "in other sites"}
	if site == "" {
		names[0] = "in the exporter's site"
	}
	for i, list := range f.byScope {
		if len(list) == 0 {
			continue
		}
		urls := make([]string, 0, len(list))
		for j, s := range list {
			if j == 8 {
				urls = append(urls, fmt.Sprintf("and %d more", len(list)-j))
				break
			}
			urls = append(urls, s.URL)
		}
		parts = append(parts, names[i]+": "+strings.Join(urls, ", "))
	}
	for _, p := range f.domainPointers {
		parts = append(parts, "pointer to "+p.String()+" for this domain")
	}
	for _, p := range f.otherPointers {
		parts = append(parts, "pointer to "+p.String())
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, "; ")
}

// judgeSCPURLs marks which SCP URLs the chain tried and whether they
// answered, for autodiscover_scp_url_success.
func (r *run) judgeSCPURLs() {
	s := r.res.SCP
	if s == nil {
		return
	}
	for i := range s.URLs {
		u := &s.URLs[i]
		u.OK = true
		for _, st := range r.rec.steps {
			if st.Method != MethodSCP || st.URL != u.URL {
				continue
			}
			u.Tried = true
			u.OK = u.OK && st.OK
		}
		u.OK = u.OK && u.Tried
	}
}

// isDirectoryURL tells the SCP lookup's own steps (on an ldap:// or
// ldaps:// URL) from those of the URLs it found.
func isDirectoryURL(u string) bool {
	l := strings.ToLower(u)
	return strings.HasPrefix(l, "ldap://") || strings.HasPrefix(l, "ldaps://")
}
