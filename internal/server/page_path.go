package server

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// pathHop is one hop of a chain as the pages draw it: the host that
// answered at that hop and, as the arrow's label, how the chain got there.
type pathHop struct {
	Hop    int
	Method probe.Method
	Via    string
	Host   string
	// Failed marks the hop of the decisive failure, with its step and
	// class.
	Failed bool
	Step   probe.StepName
	Class  probe.ErrorClass
	// sentOn is how this hop's candidate sent the chain on ("redirectUrl",
	// "HTTP 302", "redirectAddr"); empty when it did not.
	sentOn string
}

// chainPath is the chain of hops that led to the outcome of res. For a
// failed run it ends at the decisive failure; hops a redirect chain went
// through and then gave up on (the next candidate starts again at the hop
// the abandoned one started at) are not on it.
func chainPath(res *probe.Result) []pathHop {
	f := res.Failure
	end, kind := len(res.Steps), pathKind(res.Steps)
	failedStep := f != nil && f.StepIndex >= 0 && f.StepIndex < len(res.Steps)
	if failedStep {
		end, kind = f.StepIndex+1, stepKind(res.Steps[f.StepIndex].Method)
	}
	var path []pathHop
	for _, st := range res.Steps[:end] {
		if stepKind(st.Method) != kind {
			continue
		}
		// A later candidate of the same hop replaces the earlier one; a
		// step of an earlier hop means the hops after it were abandoned.
		for len(path) > 0 && path[len(path)-1].Hop >= st.Hop {
			path = path[:len(path)-1]
		}
		h := pathHop{Hop: st.Hop, Method: st.Method, Host: st.Host}
		if st.OK && st.Name == probe.StepRedirect {
			h.sentOn = redirectKind(st.Detail)
		}
		path = append(path, h)
	}
	for i := range path {
		path[i].Via = viaWords(path, i)
		path[i].Host = probe.Printable(path[i].Host, maxPageHostBytes)
	}
	switch {
	case failedStep && len(path) > 0:
		last := &path[len(path)-1]
		last.Failed, last.Step, last.Class = true, f.Step, f.Class
	case f != nil:
		// A failure without a step (unmet expectations, nothing tried)
		// ends the path on its own, at no host.
		path = append(path, pathHop{Hop: -1, Host: probe.Printable(f.Host, maxPageHostBytes), Failed: true, Step: f.Step, Class: f.Class})
	}
	return path
}

// The kinds of discovery a result's steps belong to; each has hops of its
// own.
const (
	kindPOX        = "pox"
	kindV2         = "v2"
	kindSOAP       = "soap"
	kindFederation = "federation"
)

func stepKind(m probe.Method) string {
	switch {
	case isV2Method(m):
		return kindV2
	case strings.HasPrefix(string(m), probe.MethodSOAPPrefix):
		return kindSOAP
	case strings.HasPrefix(string(m), probe.MethodFederationPrefix):
		return kindFederation
	}
	return kindPOX
}

// pathKind is the discovery a successful run's path shows: the POX chain,
// else SOAP, else v2.
func pathKind(steps []probe.Step) string {
	have := map[string]bool{}
	for _, st := range steps {
		have[stepKind(st.Method)] = true
	}
	for _, k := range []string{kindPOX, kindSOAP, kindV2} {
		if have[k] {
			return k
		}
	}
	return kindPOX
}

// isV2Method tells Autodiscover v2's per-protocol steps apart from the
// POX chain's; v2_endpoint is a POX candidate that v2 merely suggested.
func isV2Method(m probe.Method) bool {
	return m != probe.MethodV2Endpoint && strings.HasPrefix(string(m), probe.MethodV2Prefix)
}

// viaWords labels the arrow into path[i]. A URL redirect is named by the
// kind of redirect that led there; after a redirectAddr the discovery
// starts over, so both the redirectAddr and the method that then answered
// matter.
func viaWords(path []pathHop, i int) string {
	prev := ""
	if i > 0 {
		prev = path[i-1].sentOn
	}
	if probe.BaseMethod(path[i].Method) == probe.MethodRedirect {
		return cmp.Or(prev, "redirect")
	}
	if prev == "redirectAddr" {
		return "redirectAddr · " + methodWords(path[i].Method)
	}
	return methodWords(path[i].Method)
}

// redirectKind reads how a passed redirect step sent the chain on from
// the probe's own wording at the start of its detail ("redirectUrl to …",
// "HTTP 302 to …", "redirectAddr to …"); what follows " to " is the
// server's and is never looked at.
func redirectKind(detail string) string {
	kind, _, ok := strings.Cut(detail, " to ")
	switch {
	case !ok:
		return "redirect"
	case strings.EqualFold(kind, "redirectUrl") || strings.EqualFold(kind, "redirectAddr"):
		// SOAP's RedirectUrl and RedirectAddress read as POX's words.
		return "redirect" + kind[len("redirect"):]
	case len(kind) == len("HTTP 302") && strings.HasPrefix(kind, "HTTP 3") && allDigits(kind[len("HTTP "):]):
		return kind
	}
	return "redirect"
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// methodWords names a candidate method as an admin says it.
func methodWords(m probe.Method) string {
	if base, ok := strings.CutPrefix(string(m), probe.MethodSOAPPrefix); ok {
		return "SOAP " + methodWords(probe.Method(base))
	}
	if base, ok := strings.CutPrefix(string(m), probe.MethodFederationPrefix); ok {
		return "federation " + methodWords(probe.Method(base))
	}
	switch m {
	case probe.MethodRootDomain:
		return "domain root"
	case probe.MethodAutodiscoverDomain:
		return "autodiscover host"
	case probe.MethodHTTPRedirect:
		return "HTTP redirect"
	case probe.MethodSRV:
		return "SRV"
	case probe.MethodRedirect:
		return "redirect"
	case probe.MethodV2Endpoint:
		return "v2 endpoint"
	case probe.MethodSCP:
		return "SCP"
	}
	if isV2Method(m) {
		return "Autodiscover v2"
	}
	return string(m)
}

// The certificate colours: red under certCriticalDays (or expired),
// amber under certWarningDays, green otherwise.
const (
	certCriticalDays = 7
	certWarningDays  = 21
)

// certDays is the days left on a certificate, with the colour class and
// the words that say the same thing to a reader who cannot see colour.
type certDays struct {
	Known bool
	Days  int
	// Level is the CSS class: cert-red, cert-amber, cert-green or
	// cert-none.
	Level string
	Text  string
	Title string
}

// daysLeft describes notAfter, the end of the certificate of host, as
// seen at now. The count is of whole days, left or gone: a certificate
// turns red exactly when fewer than certCriticalDays are left, and one
// that expired three days ago says -3, not -4.
func daysLeft(notAfter time.Time, host string, now time.Time) certDays {
	if notAfter.IsZero() {
		return certDays{Level: "cert-none", Text: "—", Title: "no certificate was reached"}
	}
	left := notAfter.Sub(now)
	d := certDays{Known: true, Days: int(left / (24 * time.Hour))}
	expires := "expires " + notAfter.UTC().Format("2006-01-02 15:04 MST")
	switch {
	case left <= 0 && d.Days == 0:
		d.Level, d.Text = "cert-red", "expired today"
		expires = "EXPIRED on " + notAfter.UTC().Format("2006-01-02 15:04 MST")
	case left <= 0:
		d.Level, d.Text = "cert-red", fmt.Sprintf("expired %d day%s ago", -d.Days, plural(-d.Days))
		expires = "EXPIRED on " + notAfter.UTC().Format("2006-01-02 15:04 MST")
	default:
		d.Text = fmt.Sprintf("%d day%s", d.Days, plural(d.Days))
	}
	switch {
	case d.Level != "":
	case d.Days < certCriticalDays:
		d.Level = "cert-red"
		expires += fmt.Sprintf(" (critical: under %d days left)", certCriticalDays)
	case d.Days < certWarningDays:
		d.Level = "cert-amber"
		expires += fmt.Sprintf(" (warning: under %d days left)", certWarningDays)
	default:
		d.Level = "cert-green"
		expires += " (ok)"
	}
	d.Title = probe.Printable(host, maxPageHostBytes) + ": " + expires
	return d
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// earliestCertificate is the certificate of the chain that ends first:
// over every TLS host the run reached, the leaf or, when it ends sooner,
// an issuing certificate of its verified chain.
func earliestCertificate(res *probe.Result, now time.Time) certDays {
	var end time.Time
	host, issuing := "", false
	for _, c := range res.Certificates {
		for _, t := range []time.Time{c.NotAfter, c.ChainNotAfter} {
			if !t.IsZero() && (end.IsZero() || t.Before(end)) {
				end, host, issuing = t, c.Host, !t.Equal(c.NotAfter)
			}
		}
	}
	d := daysLeft(end, host, now)
	if issuing {
		d.Title = "an issuing certificate of " + d.Title
	} else if d.Known {
		d.Title = "earliest certificate of the chain, " + d.Title
	}
	return d
}
