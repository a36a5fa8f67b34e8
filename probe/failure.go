package probe

import (
	"fmt"
	"strings"
	"time"
)

// StepExpectations stands for the expectations in a Failure when every
// step passed and an expectation did not. It is never a recorded step.
const StepExpectations StepName = "expectations"

// Failure is the decisive failure of a failed run: the step that got
// furthest toward settings. On-call reads it first; the collector exports
// its method, host, step and class.
type Failure struct {
	Hop    int
	Method Method
	Host   string
	Step   StepName
	Class  ErrorClass
	// Sentence says in plain words what failed, where, and by which
	// candidate: "the certificate of autodiscover.contoso.com expired on
	// 2026-11-29 (autodiscover host)".
	Sentence string
	// StepIndex is the step's index in Result.Steps; -1 for expectations.
	StepIndex int
}

// depthOf ranks how far toward settings a failed step got. Within one
// hop a certificate verdict is further than a refused connection, which
// is further than a name that does not exist; an Autodiscover error or a
// refusal of the credentials means a server took the request in and
// outranks everything.
func depthOf(st Step) int {
	switch st.ErrorClass {
	case ClassAutodiscoverError, ClassAuthFailed, ClassAuthBackoff, ClassAccountState, ClassV2Error,
		ClassSOAPFault, ClassInvalidUser, ClassInvalidRequest, ClassServerBusy, ClassNotFederated, ClassSOAPError:
		return 100
	}
	switch st.Name {
	case StepDNS, StepSRVLookup:
		return 1
	case StepTCP:
		return 2
	case StepTLSHandshake:
		return 3
	case StepCertName, StepCertTrust, StepCertValidity, StepClientCert:
		return 4
	case StepHTTPGet, StepRequest:
		return 5
	case StepCredentials:
		return 6
	default: // parse, redirect
		return 7
	}
}

// decisiveStep picks, among the failed steps that keep, the one that got
// furthest: the deepest hop first, then the deepest step, then the
// candidate an admin looks at first; on a tie the later one, since a
// client reaches it only after the earlier candidates gave up. -1 when no
// kept step failed.
func decisiveStep(steps []Step, keep func(Step) bool) int {
	best := -1
	for i, st := range steps {
		if st.OK || !keep(st) {
			continue
		}
		if best < 0 || further(st, steps[best]) {
			best = i
		}
	}
	return best
}

// further reports whether a got at least as far as b.
func further(a, b Step) bool {
	da, db := depthOf(a), depthOf(b)
	if (da == 100) != (db == 100) {
		return da == 100
	}
	if a.Hop != b.Hop {
		return a.Hop > b.Hop
	}
	if da != db {
		return da > db
	}
	return candidateWeight(a.Method) >= candidateWeight(b.Method)
}

// candidateWeight orders candidates that failed equally far: the
// autodiscover host is where Autodiscover is meant to live; a domain root
// is usually a web site that was never meant to answer, and the HTTP
// redirect method is a fallback many estates do not publish.
func candidateWeight(m Method) int {
	switch BaseMethod(m) {
	case MethodAutodiscoverDomain:
		return 3
	case MethodSRV, MethodRedirect, MethodV2Endpoint, MethodSCP:
		return 2
	case MethodRootDomain:
		return 1
	}
	return 0
}

// stepFailure is the decisive failure among the failed steps that keep;
// nil when none of them failed.
func stepFailure(steps []Step, keep func(Step) bool, certs []CertInfo) *Failure {
	i := decisiveStep(steps, keep)
	if i < 0 {
		return nil
	}
	st := steps[i]
	return &Failure{
		Hop: st.Hop, Method: st.Method, Host: st.Host, Step: st.Name, Class: st.ErrorClass,
		Sentence:  Printable(failureWords(st, certs)+" ("+methodWords(st.Method)+")", maxReasonBytes),
		StepIndex: i,
	}
}

// failureWords says what a failed step means, in the words an admin would
// use; classes without their own sentence fall back to the step's detail.
func failureWords(st Step, certs []CertInfo) string {
	h := st.Host
	switch st.ErrorClass {
	case ClassNXDomain:
		return h + " does not exist in DNS"
	case ClassNoRecords:
		if st.Name == StepSRVLookup {
			return "there is no SRV record at " + h
		}
		return h + " has no address in DNS"
	case ClassNoUsableSRV:
		return "the SRV records at " + h + " name no server on port 443"
	case ClassRefused:
		return fmt.Sprintf("%s refused the connection on port %d", h, st.Port)
	case ClassUnreachable:
		return fmt.Sprintf("%s is unreachable on port %d", h, st.Port)
	case ClassTimeout:
		return fmt.Sprintf("%s did not answer in time (%s)", h, st.Name)
	case ClassHandshakeFailed:
		return "the TLS handshake with " + h + " failed"
	case ClassNameMismatch:
		return "the certificate of " + h + " does not name it"
	case ClassUntrusted:
		return "the certificate of " + h + " is not trusted"
	case ClassExpired:
		if c := certOf(certs, h); c != nil && !c.NotAfter.IsZero() && time.Now().After(c.NotAfter) {
			return "the certificate of " + h + " expired on " + c.NotAfter.UTC().Format(time.DateOnly)
		}
		return "a certificate in the chain of " + h + " has expired"
	case ClassNotYetValid:
		if c := certOf(certs, h); c != nil && !c.NotBefore.IsZero() {
			return "the certificate of " + h + " is valid only from " + c.NotBefore.UTC().Format(time.DateOnly)
		}
		return "the certificate of " + h + " is not valid yet"
	case ClassClientCertRequested, ClassClientCertRequired:
		return h + " asks for a client certificate"
	case ClassNotFound:
		return h + " has no Autodiscover service here (" + st.Detail + ")"
	case ClassNoCredentials:
		return h + " asks for credentials and the module has none"
	case ClassAuthFailed:
		return h + " refused the credentials"
	case ClassAuthBackoff:
		return "credentials for " + h + " are withheld after an earlier refusal"
	case ClassWithheldPlainHTTP, ClassWithheldCertificate, ClassWithheldDomain:
		return "credentials were withheld from " + h + ": " + st.Detail
	case ClassAutodiscoverError:
		return h + " answered with an Autodiscover error: " + st.Detail
	case ClassLoop:
		return "redirect loop at " + h + ": " + st.Detail
	case ClassTooManyRedirects:
		return "too many redirects at " + h + ": " + st.Detail
	}
	return fmt.Sprintf("%s on %s failed: %s", st.Name, h, st.Detail)
}

func certOf(certs []CertInfo, host string) *CertInfo {
	for i := range certs {
		if certs[i].Host == host {
			return &certs[i]
		}
	}
	return nil
}

// methodWords names a candidate method briefly, for the end of a
// Failure's sentence.
func methodWords(m Method) string {
	if isSOAPStep(Step{Method: m}) {
		return "SOAP, " + methodWords(BaseMethod(m))
	}
	if isFederationStep(Step{Method: m}) {
		return "federation check, " + methodWords(BaseMethod(m))
	}
	switch m {
	case MethodRootDomain:
		return "domain root"
	case MethodAutodiscoverDomain:
		return "autodiscover host"
	case MethodHTTPRedirect:
		return "HTTP redirect method"
	case MethodSRV:
		return "SRV record"
	case MethodRedirect:
		return "redirect"
	case MethodV2Endpoint:
		return "URL from Autodiscover v2"
	case MethodSCP:
		return "SCP lookup"
	}
	if isV2Step(Step{Method: m}) {
		return "Autodiscover v2"
	}
	if m == MethodEndpoint {
		return "endpoint host"
	}
	if p, ok := strings.CutPrefix(string(m), MethodEndpointPrefix); ok {
		return ProtocolWords(EndpointProtocol(p)) + " endpoint"
	}
	return string(m)
}

// endpointFailure is the failure of the first endpoint check that failed,
// for a run that failed on expect.endpoints alone: the check's own step,
// or its host's when the connection failed. Nil when every check passed.
func (r *run) endpointFailure() *Failure {
	res := r.res
	for _, c := range res.Endpoints {
		if c.OK {
			continue
		}
		st, ok := lastFailed(c.Steps)
		if !ok {
			for _, h := range res.EndpointHosts {
				if h.Host == c.Host && h.Port == c.Port {
					st, ok = lastFailed(h.Steps)
				}
			}
		}
		if !ok {
			continue
		}
		words := c.What + " at " + c.URL + ": " + st.Detail
		if st.Method == MethodEndpoint || st.Name == StepCredentials {
			words = failureWords(st, res.Certificates) + " (" + c.What + " at " + c.URL + ")"
		}
		return &Failure{Hop: st.Hop, Method: st.Method, Host: st.Host, Step: st.Name, Class: st.ErrorClass, Sentence: Printable(words, maxReasonBytes), StepIndex: -1}
	}
	return nil
}

func lastFailed(steps []Step) (Step, bool) {
	for i := len(steps) - 1; i >= 0; i-- {
		if !steps[i].OK {
			return steps[i], true
		}
	}
	return Step{}, false
}
