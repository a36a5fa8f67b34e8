package probe

import (
	"net/url"
	"regexp"
	"strings"
)

// flavour is what tells the three discoveries that walk the same
// candidates apart: POX (autodiscover.xml, Outlook's), SOAP
// GetUserSettings (autodiscover.svc, EWS clients') and the anonymous
// GetFederationInformation (autodiscover.svc, Exchange Online's for
// hybrid free/busy). The candidates, the connection steps, the redirect
// rules and the credential rules are shared; the path, the method names,
// the request and the reading of the answer are the flavour's.
type flavour int

const (
	flavourPOX flavour = iota
	flavourSOAP
	flavourFederation
)

// path is the Autodiscover path the flavour asks at.
func (f flavour) path() string {
	if f == flavourPOX {
		return "/autodiscover/autodiscover.xml"
	}
	return "/autodiscover/autodiscover.svc"
}

// method names a candidate method in this flavour: soap_root_domain,
// federation_srv, … so that their series stay apart from POX's.
func (f flavour) method(m Method) Method {
	switch f {
	case flavourSOAP:
		return MethodSOAPPrefix + m
	case flavourFederation:
		return MethodFederationPrefix + m
	}
	return m
}

// redirectRule is the path rule of a 3xx: a POX chain stays on
// autodiscover.xml URLs, a SOAP one on autodiscover.svc URLs.
func (f flavour) redirectRule() urlRule {
	if f == flavourPOX {
		return poxRedirect
	}
	return soapRedirect
}

// anonymous flavours never answer a challenge: GetFederationInformation
// "has to be anonymous" ([MS-OXWSADISC] security considerations).
func (f flavour) anonymous() bool { return f == flavourFederation }

// keep tells the flavour's steps from the others' in the run's recorder.
func (f flavour) keep(st Step) bool {
	switch f {
	case flavourSOAP:
		return isSOAPStep(st)
	case flavourFederation:
		return isFederationStep(st)
	}
	return isPOXStep(st)
}

// soapRedirect is the path rule of a 3xx in the SOAP flavours.
var soapRedirect = urlRule{what: "redirect", path: regexp.MustCompile(`(?i)^/autodiscover/([^/]+/)*autodiscover\.svc$`), pathWords: "/autodiscover/…/autodiscover.svc"}

// anyAutodiscoverRedirect admits the Location of the HTTP redirect method
// for the SOAP flavours: an autodiscover.xml or autodiscover.svc URL,
// whose host is then asked.
var anyAutodiscoverRedirect = urlRule{what: "redirect", path: regexp.MustCompile(`(?i)^/autodiscover/([^/]+/)*autodiscover\.(xml|svc)$`), pathWords: "/autodiscover/…/autodiscover.xml or .svc"}

// candidateURL is the Autodiscover URL of host in the run's flavour.
func (r *run) candidateURL(host string) *url.URL {
	return &url.URL{Scheme: "https", Host: host, Path: r.fl.path()}
}

// asSOAPURL turns the HTTPS Autodiscover URL an HTTP redirect named into
// the SOAP URL of the same host: [MS-OXWSADISC] 3.1.5.1 keeps only the
// host of the Location and asks its autodiscover.svc.
func asSOAPURL(u *url.URL) *url.URL {
	if soapRedirect.path.MatchString(u.EscapedPath()) {
		return u
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/autodiscover/autodiscover.svc"}
}

// isSOAPStep tells the SOAP discovery's steps from the others'.
func isSOAPStep(st Step) bool { return strings.HasPrefix(string(st.Method), MethodSOAPPrefix) }

// isFederationStep tells the federation check's steps from the others'.
func isFederationStep(st Step) bool {
	return strings.HasPrefix(string(st.Method), MethodFederationPrefix)
}

// BaseMethod is m without its flavour's prefix: the candidate method a
// soap_ or federation_ step belongs to.
func BaseMethod(m Method) Method {
	s := string(m)
	s = strings.TrimPrefix(s, MethodSOAPPrefix)
	s = strings.TrimPrefix(s, MethodFederationPrefix)
	return Method(s)
}
