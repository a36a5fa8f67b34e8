package probe

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Log renders the result as a step log in the words of Microsoft Remote
// Connectivity Analyzer, one line per step, grouped by candidate URL:
//
//	Attempting to resolve the host name autodiscover.contoso.test in DNS … OK: resolved 127.0.0.11 (0 ms)
func (r *Result) Log() string {
	var b strings.Builder
	r.WriteLog(&b)
	return b.String()
}

// WriteLog writes Log to w.
func (r *Result) WriteLog(w io.Writer) {
	fmt.Fprintf(w, "Testing Autodiscover for %s.\n", r.Mailbox)
	for _, v := range r.V2 {
		if v.OK {
			fmt.Fprintf(w, "Autodiscover v2 %s: %s (from %s).\n", v.Protocol, v.URL, v.Host)
		} else if v.ErrorCode != "" {
			fmt.Fprintf(w, "Autodiscover v2 %s failed: %s %s.\n", v.Protocol, v.ErrorCode, v.ErrorMessage)
		} else {
			fmt.Fprintf(w, "Autodiscover v2 %s failed.\n", v.Protocol)
		}
	}
	fmt.Fprintf(w, "Attempting each method of contacting the Autodiscover service.\n")
	// The chain's section holds v2's steps too, as before SOAP existed.
	writeHops(w, r.Steps, func(st Step) bool { return !isSOAPStep(st) && !isFederationStep(st) })
	r.writeSCP(w)
	r.writeSOAP(w)
	r.writeFederation(w)
	writeAddressChecks(w, r.AddressChecks)
	r.writeEndpoints(w)
	writeExpectations(w, r.Expectations)
	fmt.Fprintln(w)
	switch {
	case r.Success && r.FinalURL == "" && r.SOAP != nil && r.SOAP.OK && len(r.V2) == 0:
		fmt.Fprintf(w, "SOAP Autodiscover returned settings from %s after %d redirect hop(s) in %s.\n", Printable(r.SOAP.URL, maxFieldBytes), r.SOAP.Redirects, ms(r.Duration))
	case r.Success && r.FinalURL == "":
		fmt.Fprintf(w, "Autodiscover v2 returned an endpoint for every protocol asked (from %s) in %s.\n", v2Hosts(r.V2), ms(r.Duration))
	case r.Success:
		fmt.Fprintf(w, "Autodiscover settings were obtained from %s after %d redirect hop(s) in %s.\n", Printable(r.FinalURL, maxFieldBytes), r.RedirectHops, ms(r.Duration))
	default:
		fmt.Fprintf(w, "Testing Autodiscover failed after %d redirect hop(s) in %s: %s.\n", r.RedirectHops, ms(r.Duration), r.Reason)
	}
}

// writeHops writes the steps that keep, grouped by hop and candidate.
func writeHops(w io.Writer, steps []Step, keep func(Step) bool) {
	hop, mailbox, group := -1, "", ""
	for _, s := range steps {
		if !keep(s) {
			continue
		}
		if s.Hop != hop || s.Mailbox != mailbox {
			hop, mailbox, group = s.Hop, s.Mailbox, ""
			fmt.Fprintf(w, "\nHop %d: discovering %s\n", s.Hop, Printable(s.Mailbox, maxFieldBytes))
		}
		if g := candidateHeading(s); g != group {
			group = g
			fmt.Fprintf(w, "  %s\n", g)
		}
		writeStepLine(w, "    ", s)
	}
}

// writeSCP sums up the SCP lookup: every SCP URL found, in the order
// Outlook tries them, and what became of it.
func (r *Result) writeSCP(w io.Writer) {
	s := r.SCP
	if s == nil {
		return
	}
	site := "no site preferred"
	if s.Site != "" {
		site = "site " + Printable(s.Site, maxFieldBytes)
	}
	fmt.Fprintf(w, "\nService connection points in Active Directory (%s, %s): %d SCP URL object(s), %d pointer(s).\n", Printable(s.Directory, maxFieldBytes), site, s.Records, s.Pointers)
	for i, u := range s.URLs {
		verdict := "not tried (an earlier candidate answered)"
		switch {
		case u.Tried && u.OK:
			verdict = "answered"
		case u.Tried:
			verdict = "FAILED"
		}
		fmt.Fprintf(w, "  %d. %s (%s): %s\n", i+1, Printable(u.URL, maxFieldBytes), strings.ReplaceAll(u.Scope, "_", " "), verdict)
	}
}

// writeSOAP is the SOAP Autodiscover section.
func (r *Result) writeSOAP(w io.Writer) {
	if r.SOAP == nil {
		return
	}
	fmt.Fprintf(w, "\nTesting SOAP Autodiscover (autodiscover.svc, GetUserSettings) for %s, as EWS applications do.\n", r.Mailbox)
	writeHops(w, r.Steps, isSOAPStep)
	s := r.SOAP
	if s.OK {
		fmt.Fprintf(w, "SOAP Autodiscover returned settings from %s after %d redirect hop(s): EWS %s (from %s).\n", Printable(s.URL, maxFieldBytes), s.Redirects, s.EWSURL, s.EWSSource)
		return
	}
	fmt.Fprintf(w, "SOAP Autodiscover failed: %s.\n", strings.TrimSuffix(s.Reason, "."))
}

// writeFederation is the federation check's section.
func (r *Result) writeFederation(w io.Writer) {
	f := r.Federation
	if f == nil {
		return
	}
	domain := r.Mailbox[strings.LastIndexByte(r.Mailbox, '@')+1:]
	fmt.Fprintf(w, "\nTesting the federation information of %s (GetFederationInformation, anonymous), as Exchange Online asks it for hybrid free/busy.\n", domain)
	writeHops(w, r.Steps, isFederationStep)
	if f.OK {
		fmt.Fprintf(w, "The federation information was obtained from %s: ApplicationUri %s; the WSSecurity endpoint answers.\n", Printable(f.URL, maxFieldBytes), f.ApplicationURI)
		return
	}
	fmt.Fprintf(w, "The federation check failed: %s.\n", strings.TrimSuffix(f.Reason, "."))
}

func candidateHeading(s Step) string {
	if strings.HasPrefix(string(s.Method), MethodV2Prefix) {
		return fmt.Sprintf("Attempting Autodiscover v2 (%s) at %s.", strings.TrimPrefix(string(s.Method), MethodV2Prefix), s.URL)
	}
	switch {
	case s.Name == StepWSSecurity:
		return "Testing the WSSecurity endpoint " + s.URL + " that Exchange Online calls with its federation token."
	case s.Name == StepSRVLookup:
		return "Attempting to contact the Autodiscover service using the DNS SRV redirect method."
	case s.Method == MethodSCP && isDirectoryURL(s.URL):
		return "Attempting to retrieve the Autodiscover SCP objects from Active Directory at " + s.URL + "."
	case BaseMethod(s.Method) == MethodHTTPRedirect:
		return "Attempting to contact the Autodiscover service using the HTTP redirect method (" + s.URL + ")."
	}
	via := map[Method]string{
		MethodRootDomain:         "the domain root",
		MethodAutodiscoverDomain: "the autodiscover host",
		MethodSRV:                "an SRV record",
		MethodRedirect:           "a redirect",
		MethodV2Endpoint:         "Autodiscover v2's AutodiscoverV1 answer",
		MethodSCP:                "an SCP object in Active Directory",
	}[BaseMethod(s.Method)]
	return fmt.Sprintf("Attempting to test potential Autodiscover URL %s (from %s).", s.URL, via)
}

func stepPhrase(s Step) string {
	switch s.Name {
	case StepDNS:
		return fmt.Sprintf("Attempting to resolve the host name %s in DNS", s.Host)
	case StepSRVLookup:
		return fmt.Sprintf("Attempting to locate SRV record %s in DNS", s.Host)
	case StepTCP:
		return fmt.Sprintf("Testing TCP port %d on host %s to ensure it's listening and open", s.Port, s.Host)
	case StepTLSHandshake:
		return fmt.Sprintf("Attempting to obtain the SSL certificate from remote server %s on port %d", s.Host, s.Port)
	case StepCertName:
		return "Validating the certificate name"
	case StepCertTrust:
		return "Validating the certificate trust"
	case StepCertValidity:
		return "Testing the certificate date to confirm the certificate is valid"
	case StepClientCert:
		return "Checking the IIS configuration for client certificate authentication"
	case StepHTTPGet:
		return fmt.Sprintf("Checking the host %s for an HTTP redirect to the Autodiscover service", s.Host)
	case StepCredentials:
		return "Providing user credentials"
	case StepRequest:
		if strings.HasPrefix(string(s.Method), MethodV2Prefix) {
			return fmt.Sprintf("Sending an anonymous Autodiscover v2 GET to %s", s.Host)
		}
		switch {
		case isSOAPStep(s):
			return fmt.Sprintf("Attempting to send a SOAP GetUserSettings request to %s", s.URL)
		case isFederationStep(s):
			return fmt.Sprintf("Attempting to send an anonymous GetFederationInformation request to %s", s.URL)
		}
		return fmt.Sprintf("Attempting to send an Autodiscover POST request to %s", s.URL)
	case StepParse:
		if isSOAPStep(s) || isFederationStep(s) {
			return "Analyzing the SOAP Autodiscover response"
		}
		return "Analyzing the Autodiscover response"
	case StepWSSecurity:
		return fmt.Sprintf("Testing the WSSecurity endpoint %s that Exchange Online calls", s.URL)
	case StepRedirect:
		return "Checking the redirect"
	case StepLDAPBind:
		return fmt.Sprintf("Binding to the directory %s", s.Host)
	case StepSCPLookup:
		return "Searching the configuration partition for Autodiscover SCP objects"
	case StepSCPRecord:
		return "Reading an SCP object's serviceBindingInformation"
	case StepEndpointURL:
		return fmt.Sprintf("Checking the endpoint URL %s", s.URL)
	case StepAuthMethods:
		return fmt.Sprintf("Testing HTTP Authentication Methods for URL %s", s.URL)
	case StepEndpointAnswer:
		return endpointAnswerPhrase(s)
	}
	return string(s.Name)
}

func writeStepLine(w io.Writer, indent string, s Step) {
	mark, verdict := "✓", "OK"
	if !s.OK {
		mark, verdict = "✗", "FAILED ("+string(s.ErrorClass)+")"
	}
	fmt.Fprintf(w, "%s%s %s … %s", indent, mark, stepPhrase(s), verdict)
	if s.Detail != "" {
		fmt.Fprintf(w, ": %s", s.Detail)
	}
	fmt.Fprintf(w, " (%s)\n", ms(s.Duration))
}

func writeAddressChecks(w io.Writer, checks []AddressCheck) {
	if len(checks) == 0 {
		return
	}
	fmt.Fprintf(w, "\nChecking every address of every TLS host (the load-balancer node view).\n")
	for _, ac := range checks {
		fmt.Fprintf(w, "  %s at %s\n", ac.Host, ac.Address)
		for _, s := range ac.Steps {
			writeStepLine(w, "    ", s)
		}
	}
}

func writeExpectations(w io.Writer, exps []ExpectationResult) {
	if len(exps) == 0 {
		return
	}
	fmt.Fprintf(w, "\nChecking the expectations of this mailbox.\n")
	for _, e := range exps {
		mark, verdict := "✓", "met"
		if !e.OK {
			mark, verdict = "✗", "NOT MET"
		}
		fmt.Fprintf(w, "    %s Expectation %s … %s: %s\n", mark, e.Name, verdict, e.Detail)
	}
}

// v2Hosts lists the hosts v2 answers came from, each once.
func v2Hosts(results []V2Result) string {
	var hosts []string
	for _, v := range results {
		if !slices.Contains(hosts, v.Host) {
			hosts = append(hosts, v.Host)
		}
	}
	return strings.Join(hosts, ", ")
}

// endpointAnswerPhrase words the protocol check of an endpoint as ExRCA's
// Outlook connectivity test does.
func endpointAnswerPhrase(s Step) string {
	switch s.Method {
	case endpointMethod(EndpointEWS):
		return "Testing the EWS GetFolder request for the Inbox folder"
	case endpointMethod(EndpointMAPI):
		if strings.Contains(strings.ToLower(s.URL), "/nspi") {
			return "Testing the MAPI Address Book endpoint on the Exchange server"
		}
		return "Testing the MAPI Mail Store endpoint on the Exchange server"
	case endpointMethod(EndpointOAB):
		return "Testing the Offline Address Book download (oab.xml)"
	case endpointMethod(EndpointActiveSync):
		return "Testing the Exchange ActiveSync OPTIONS command"
	case endpointMethod(EndpointOWA):
		return fmt.Sprintf("Testing Outlook on the web at %s", s.URL)
	}
	return string(s.Name)
}

// writeEndpoints writes the section of the endpoints the answer returned:
// each host's connection once, then each URL on it.
func (r *Result) writeEndpoints(w io.Writer) {
	if len(r.EndpointHosts) == 0 && len(r.Endpoints) == 0 && len(r.EndpointsMissing) == 0 {
		return
	}
	fmt.Fprintf(w, "\nTesting the endpoints Autodiscover returned.\n")
	for _, h := range r.EndpointHosts {
		var whats []string
		for _, c := range r.Endpoints {
			if c.Host == h.Host && c.Port == h.Port && !slices.Contains(whats, ProtocolWords(c.Protocol)) {
				whats = append(whats, ProtocolWords(c.Protocol))
			}
		}
		fmt.Fprintf(w, "  Testing the endpoint host %s on port %d (%s).\n", h.Host, h.Port, strings.Join(whats, ", "))
		if h.SharedWithChain {
			fmt.Fprintf(w, "    ✓ The certificate of %s was validated while testing Autodiscover above; the same certificate was presented.\n", h.Host)
		}
		for _, s := range h.Steps {
			writeStepLine(w, "    ", s)
		}
		for _, c := range r.Endpoints {
			if c.Host != h.Host || c.Port != h.Port || len(c.Steps) > 0 && c.Steps[0].Name == StepEndpointURL {
				continue
			}
			fmt.Fprintf(w, "    Testing %s at %s (%s, from %s).\n", c.What, c.URL, c.Scope, c.Source)
			if len(c.Steps) == 0 {
				fmt.Fprintf(w, "      ✗ Not tested: the connection to %s failed.\n", h.Host)
			}
			for _, s := range c.Steps {
				writeStepLine(w, "      ", s)
			}
		}
	}
	for _, c := range r.Endpoints {
		if len(c.Steps) > 0 && c.Steps[0].Name == StepEndpointURL {
			fmt.Fprintf(w, "  Not testing %s at %s (%s, from %s).\n", c.What, c.URL, c.Scope, c.Source)
			writeStepLine(w, "    ", c.Steps[0])
		}
	}
	for _, p := range r.EndpointsMissing {
		fmt.Fprintf(w, "  The answer returned no %s URL.\n", ProtocolWords(p))
	}
}
