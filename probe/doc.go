// Package probe runs the Exchange Autodiscover discovery chain for one
// mailbox, step by step, the way Microsoft Remote Connectivity Analyzer
// does, and returns a typed record of every step.
//
// For local@domain the candidates are, in order (each can be switched off
// with Settings.Methods):
//
//  1. https://domain/autodiscover/autodiscover.xml
//  2. https://autodiscover.domain/autodiscover/autodiscover.xml
//  3. the HTTP redirect method: an unauthenticated GET of
//     http://autodiscover.domain/autodiscover/autodiscover.xml answered by
//     301/302/303/307 to an https:// /autodiscover/…/autodiscover.xml URL
//  4. DNS SRV _autodiscover._tcp.domain, lowest priority first, port 443 only
//
// Each candidate is checked as separate steps: DNS (A and AAAA through the
// module's resolver, CNAME chain recorded), TCP (each address in turn),
// TLS handshake, certificate name, trust and dates as three verdicts,
// whether the server asked for a client certificate, the POST (with
// credentials only in answer to a 401, only over HTTPS whose certificate
// passed, only to the mailbox's domain or an allowed one), and the parse of
// the answer. redirectAddr restarts discovery for the new address;
// redirectUrl and 3xx re-POST the same body to the new URL. One hop budget
// covers every redirect kind, and a URL or address seen twice ends the run
// as a loop. The domain tree is never climbed.
//
// The contract: Settings describe a module as plain data; NewProber turns
// them, once per configuration load, into a Prober that holds what probes
// share (the resolver, the authenticator and its token cache, the
// credential guard, the clock); Prober.Run takes a Target, the
// per-mailbox part, and returns a Result. Every failure has an
// ErrorClass from a closed vocabulary (ErrorClasses).
//
// Inside, one file per step kind: dns.go, tcp.go, tls.go (the one TLS
// dial), post.go and auth.go (the POST and the credential rules),
// redirect.go (the one validator of hosts servers name), methods.go (the
// four candidate methods), v2.go, addresses.go, expect.go and log.go; every
// step goes through the one recorder in recorder.go, and probe.go holds
// Run and the candidate loop.
//
// The package knows nothing of Prometheus: the collector package turns a
// Result into metrics, and Result.Log renders it for people.
package probe
