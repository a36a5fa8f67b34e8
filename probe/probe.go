package probe

import (
	"cmp"
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Run discovers the Autodiscover settings of one mailbox the way Outlook
// does, recording every step. It returns an error only when the address is
// unusable, before any network traffic; every problem met on the network
// is a failed step in the Result. Run returns by ctx's deadline (and the
// module's timeout) with what it has.
func (p *Prober) Run(ctx context.Context, t Target) (*Result, error) {
	mailbox, domain, err := NormalizeAddress(t.Address)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.s.timeout())
	defer cancel()
	start := time.Now()
	r := &run{
		p:            p,
		target:       t,
		start:        start,
		rec:          newRecorder(start, 48),
		budget:       newBudget(&p.s),
		homeDomain:   domain,
		mailbox:      mailbox,
		res:          &Result{Mailbox: mailbox},
		visitedURLs:  map[string]bool{},
		visitedAddrs: map[string]bool{strings.ToLower(mailbox): true},
		certSeen:     map[string]bool{},
		chainLeaves:  map[string][]byte{},
	}
	r.execute(ctx)
	return r.res, nil
}

// run is the state of one discovery.
type run struct {
	p      *Prober
	target Target
	rec    *recorder
	res    *Result
	budget *budget

	// fl is the flavour of the discovery: POX for the chain itself, SOAP
	// or federation in a sub-run.
	fl flavour

	start      time.Time
	hop        int
	mailbox    string // the address being discovered now
	homeDomain string // the domain of the address the run started with

	visitedURLs  map[string]bool
	visitedAddrs map[string]bool
	certSeen     map[string]bool
	// chainLeaves holds the leaf certificate each TLS host:port of the
	// chain presented first, so an endpoint on the same host can share
	// its verdict.
	chainLeaves map[string][]byte
	// tlsHosts lists every TLS host the run resolved, in order, with the
	// addresses DNS gave, for the per-address checks.
	tlsHosts []tlsHost
	// scpURLs are the URLs the SCP lookup found, asked once per run.
	scpURLs []*url.URL
	// errorReason is the first Autodiscover Error a candidate answered,
	// when ContinueAfterError went on past it.
	errorReason string
}

// next says what the chain does after a candidate.
type next int

const (
	nextCandidate next = iota // this candidate failed: try the next one
	stop                      // the run is over (success, Autodiscover error, loop, budget, deadline)
	restart                   // a redirectAddr: discover again for a new address
	follow                    // a URL redirect passed its checks: POST there
)

// outcome is what a candidate, a POST or a redirect check decided, with
// what the decision needs: the URL to follow, the address to restart for,
// or why the run stops.
type outcome struct {
	next next
	// url is where a follow goes.
	url *url.URL
	// mailbox and domain are what a restart discovers.
	mailbox, domain string
	// reason says why a stop ends the run; empty when it ends with settings.
	reason string
}

func stopBecause(reason string) outcome { return outcome{next: stop, reason: reason} }

// execute runs v2 and the POX chain in the configured order, then the
// per-address checks, and sets the verdict.
func (r *run) execute(ctx context.Context) {
	methods := r.p.s.methods()
	v2 := slices.Contains(methods, MethodV2JSON)
	soap := slices.Contains(methods, MethodSOAP)
	pox := slices.ContainsFunc(methods, func(m Method) bool { return slices.Contains(poxMethods, m) })
	if v2 && methods[0] == MethodV2JSON {
		r.runV2(ctx)
	}
	var chain outcome
	if pox {
		chain = r.discover(ctx)
		if !r.res.ChainSuccess && chain.reason == "" {
			chain.reason = cmp.Or(r.errorReason, r.failureSummary(ctx))
		}
	}
	if v2 && methods[0] != MethodV2JSON {
		r.runV2(ctx)
	}
	r.res.RedirectHops = r.hop
	r.judgeSCPURLs()
	if soap {
		r.runSOAP(ctx)
	}
	if r.p.s.Federation {
		r.runFederation(ctx)
	}
	// The per-address view and the endpoints are independent of each
	// other: they run side by side under the same deadline and budget.
	var wg sync.WaitGroup
	if r.p.s.CheckAllAddresses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.checkAddresses(ctx)
		}()
	}
	r.checkEndpoints(ctx)
	wg.Wait()
	r.res.Steps = r.rec.steps
	r.verdict(pox, v2, soap, chain.reason)
	if r.p.guard != nil && r.p.credentialKey != "" {
		if until, blocked := r.p.guard.Blocked(r.p.credentialKey); blocked {
			r.res.AuthBackoff = time.Until(until).Round(time.Second)
		}
	}
	r.res.Duration = time.Since(r.start)
}

// verdict decides Success and, in the one place it is set, the Reason:
// the chain's own failure first, then v2's, then unmet expectations.
func (r *run) verdict(pox, v2, soap bool, chainReason string) {
	res := r.res
	reason := ""
	if pox && !res.ChainSuccess {
		reason = chainReason
	}
	v2OK := !v2 || r.v2OK()
	soapOK := !soap || res.SOAP.OK
	res.Success = (!pox || res.ChainSuccess) && v2OK && soapOK
	switch {
	case v2OK:
	case reason == "":
		reason = "Autodiscover v2 failed: " + r.v2Failure()
	default:
		reason = "Autodiscover v2 failed: " + r.v2Failure() + "; and " + reason
	}
	switch {
	case soapOK:
	case reason == "":
		reason = "SOAP Autodiscover failed: " + res.SOAP.Reason
	default:
		reason += "; and SOAP Autodiscover failed: " + res.SOAP.Reason
	}
	failed := r.checkExpectations()
	if len(failed) > 0 {
		if res.Success {
			reason = "expectation not met: " + strings.Join(failed, ", ")
		}
		res.Success = false
	}
	res.Reason = Printable(reason, maxReasonBytes)
	if !res.Success {
		res.Failure = r.decisiveFailure(pox, v2, soap, failed)
	}
}

// discover runs the candidate methods for the mailbox and, after each
// redirectAddr, for the new address, until an outcome ends the chain. When
// v2 ran first and returned an AutodiscoverV1 URL, that URL is the first
// candidate, as in Outlook's Office 365 discovery; the on-premises
// candidates follow only if it leads nowhere.
func (r *run) discover(ctx context.Context) outcome {
	domain := r.homeDomain
	if v1 := r.v2AutodiscoverV1(); v1 != nil && r.fl == flavourPOX {
		if out := r.tryURL(ctx, MethodV2Endpoint, v1); out.next != nextCandidate {
			if out.next != restart {
				return out
			}
			r.mailbox, domain = out.mailbox, out.domain
		}
	}
	for {
		out := r.tryMethods(ctx, domain)
		if out.next != restart {
			return out
		}
		r.mailbox, domain = out.mailbox, out.domain
	}
}

// tryMethods walks the candidate list of one address in order.
func (r *run) tryMethods(ctx context.Context, domain string) outcome {
	methods := r.p.s.methods()
	if r.fl != flavourPOX {
		methods = r.candidateMethods()
	}
	for _, m := range methods {
		if ctx.Err() != nil {
			return stopBecause("the deadline was reached before every method was tried")
		}
		var out outcome
		switch m {
		case MethodSCP:
			out = r.trySCP(ctx, domain)
		case MethodRootDomain:
			out = r.tryURL(ctx, r.fl.method(m), r.candidateURL(domain))
		case MethodAutodiscoverDomain:
			out = r.tryURL(ctx, r.fl.method(m), r.candidateURL("autodiscover."+domain))
		case MethodHTTPRedirect:
			out = r.tryHTTPRedirect(ctx, domain)
		case MethodSRV:
			out = r.trySRV(ctx, domain)
		default:
			continue // v2_json and soap run outside the POX chain
		}
		if out.next != nextCandidate {
			return out
		}
	}
	return outcome{next: nextCandidate}
}

// newTarget is the candidate u of the current hop.
func (r *run) newTarget(method Method, u *url.URL) target {
	return target{hop: r.hop, method: method, mailbox: r.mailbox, host: strings.ToLower(u.Hostname()), port: portOf(u), url: u.String()}
}

// failureSummary explains a failed chain in one sentence: its decisive
// failure.
func (r *run) failureSummary(ctx context.Context) string {
	prefix := ""
	if ctx.Err() != nil {
		prefix = "the deadline was reached; "
	}
	if f := stepFailure(r.rec.steps, r.fl.keep, r.res.Certificates); f != nil {
		return prefix + f.Sentence
	}
	return prefix + "no method reached an Autodiscover server for " + r.mailbox
}

// isV2Step tells v2_json's steps (method v2_<protocol>) from the POX
// chain's; v2_endpoint is a POX candidate.
func isV2Step(st Step) bool {
	return st.Method != MethodV2Endpoint && strings.HasPrefix(string(st.Method), MethodV2Prefix)
}

func isPOXStep(st Step) bool { return !isV2Step(st) && !isSOAPStep(st) && !isFederationStep(st) }

// decisiveFailure is the Failure of a failed run: the POX chain's when it
// failed, else v2's, else the expectations'.
func (r *run) decisiveFailure(pox, v2, soap bool, unmet []string) *Failure {
	res := r.res
	var keep func(Step) bool
	switch {
	case pox && !res.ChainSuccess:
		keep = isPOXStep
	case v2 && !r.v2OK():
		keep = isV2Step
	case soap && !res.SOAP.OK:
		keep = isSOAPStep
	case slices.Contains(unmet, ExpectFederationAppURI) && res.Federation != nil && !res.Federation.OK && decisiveStep(res.Steps, isFederationStep) >= 0:
		// The federation check failed on a step; a changed ApplicationUri
		// alone is the expectation's failure below.
		keep = isFederationStep
	case slices.Contains(unmet, ExpectEndpoints) && r.endpointFailure() != nil:
		return r.endpointFailure()
	default:
		return &Failure{Step: StepExpectations, Class: ClassExpectationNotMet, StepIndex: -1,
			Sentence: Printable("expectation not met: "+strings.Join(unmet, ", "), maxReasonBytes)}
	}
	if f := stepFailure(res.Steps, keep, res.Certificates); f != nil {
		return f
	}
	// Nothing was tried (every candidate had been visited, or the
	// deadline came first): no step to name.
	return &Failure{Class: ClassNotFound, StepIndex: -1, Sentence: res.Reason}
}
