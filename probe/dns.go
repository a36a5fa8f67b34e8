package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// maxCNAMEDepth bounds how many CNAME hops a lookup follows before giving up.
const maxCNAMEDepth = 8

// maxRecords caps how many addresses or SRV records of one answer are used:
// a hostile resolver answer cannot make the probe dial thousands of hosts.
const maxRecords = 32

// resolver queries the module's DNS servers directly with miekg/dns so the
// probe sees (and times) exactly what DNS says, CNAME chain included, rather
// than what the system resolver caches.
type resolver struct {
	servers []string
	timeout time.Duration
}

func newResolver(server string, timeout time.Duration) (*resolver, error) {
	if server != "" {
		return &resolver{servers: []string{server}, timeout: timeout}, nil
	}
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return nil, fmt.Errorf("reading system resolver configuration: %w", err)
	}
	if len(cc.Servers) == 0 {
		return nil, errors.New("no nameserver in /etc/resolv.conf")
	}
	r := &resolver{timeout: timeout}
	for _, s := range cc.Servers {
		r.servers = append(r.servers, net.JoinHostPort(s, cc.Port))
	}
	return r, nil
}

// exchange asks each server in turn, over UDP and then TCP when the answer
// was truncated. A definite answer (any rcode) from one server ends it.
func (r *resolver) exchange(ctx context.Context, b *budget, name string, qtype uint16) (*dns.Msg, *Error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	// 1232 bytes is the EDNS buffer size DNS Flag Day 2020 recommends; the
	// client allocates it for every answer, and a longer one comes by TCP.
	m.SetEdns0(1232, false)
	// UDP answers get lost under load; like resolv.conf's "attempts", ask
	// each server again with a share of the step timeout before giving up.
	const attempts = 3
	perTry := max(r.timeout/attempts, 100*time.Millisecond)
	var last error
	for try := 0; try < attempts && ctx.Err() == nil; try++ {
		for _, server := range r.servers {
			if err := b.query(); err != nil {
				return nil, err
			}
			qctx, cancel := context.WithTimeout(ctx, perTry)
			c := &dns.Client{Net: "udp", UDPSize: 1232}
			resp, _, err := c.ExchangeContext(qctx, m, server)
			if err == nil && resp.Truncated {
				if berr := b.query(); berr != nil {
					cancel()
					return nil, berr
				}
				c.Net = "tcp"
				resp, _, err = c.ExchangeContext(qctx, m, server)
			}
			cancel()
			if err == nil {
				return resp, nil
			}
			last = err
			if ctx.Err() != nil {
				break
			}
		}
	}
	if isTimeout(last) || ctx.Err() != nil {
		return nil, failf(ClassTimeout, "no answer from %s within %s", strings.Join(r.servers, ", "), r.timeout)
	}
	return nil, failf(ClassDNSError, "query for %s failed: %v", name, last)
}

// hostLookup is what a successful A/AAAA lookup found.
type hostLookup struct {
	addrs  []netip.Addr
	cnames []string // the CNAME chain from the queried name, in order
}

// lookupHost resolves A and AAAA (as the IP version allows) in parallel and
// orders IPv4 before IPv6 so the dial order is predictable.
func (r *resolver) lookupHost(ctx context.Context, b *budget, host string, v IPVersion) (hostLookup, *Error) {
	var qtypes []uint16
	if v != IPv6 {
		qtypes = append(qtypes, dns.TypeA)
	}
	if v != IPv4 {
		qtypes = append(qtypes, dns.TypeAAAA)
	}
	type answer struct {
		addrs  []netip.Addr
		cnames []string
		err    *Error
	}
	answers := make([]answer, len(qtypes))
	// Both families are asked at once; the first is asked on this
	// goroutine, so a lookup costs at most one extra goroutine.
	var wg sync.WaitGroup
	for i, qt := range qtypes[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, c, err := r.followCNAMEs(ctx, b, host, qt)
			answers[i+1] = answer{a, c, err}
		}()
	}
	a, c, err := r.followCNAMEs(ctx, b, host, qtypes[0])
	answers[0] = answer{a, c, err}
	wg.Wait()

	var out hostLookup
	var firstErr *Error
	for _, a := range answers {
		out.addrs = append(out.addrs, a.addrs...)
		if len(a.cnames) > len(out.cnames) {
			out.cnames = a.cnames
		}
		if a.err != nil && (firstErr == nil || firstErr.Class == ClassNoRecords) {
			firstErr = a.err
		}
	}
	if len(out.addrs) > 0 {
		return out, nil
	}
	if firstErr == nil || firstErr.Class == ClassNoRecords {
		// Every family asked came back empty: say so of all of them, not of
		// whichever answer was read last.
		name := host
		if len(out.cnames) > 0 {
			name = out.cnames[len(out.cnames)-1]
		}
		firstErr = failf(ClassNoRecords, "%s has no %s record", name, familyWords(v))
	}
	return out, firstErr
}

func familyWords(v IPVersion) string {
	switch v {
	case IPv4:
		return "A"
	case IPv6:
		return "AAAA"
	}
	return "A or AAAA"
}

// followCNAMEs returns the addresses of one type for host, following CNAMEs
// both inside one answer and, when the resolver stopped at a CNAME, with a
// further query for the target.
func (r *resolver) followCNAMEs(ctx context.Context, b *budget, host string, qtype uint16) ([]netip.Addr, []string, *Error) {
	current := dns.Fqdn(host)
	var chain []string
	for depth := 0; depth <= maxCNAMEDepth; depth++ {
		resp, serr := r.exchange(ctx, b, current, qtype)
		if serr != nil {
			return nil, chain, serr
		}
		switch resp.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			return nil, chain, failf(ClassNXDomain, "%s does not exist (NXDOMAIN)", strings.TrimSuffix(current, "."))
		default:
			return nil, chain, failf(ClassServFail, "server answered %s for %s", dns.RcodeToString[resp.Rcode], strings.TrimSuffix(current, "."))
		}
		before := current
		current, chain = applyCNAMEs(resp, current, chain)
		if len(chain) > maxCNAMEDepth {
			return nil, chain, failf(ClassDNSError, "CNAME chain longer than %d", maxCNAMEDepth)
		}
		if current != before {
			// A CNAME target is a host a server named, like a redirect's.
			if err := checkServerHost(strings.TrimSuffix(current, "."), "CNAME target"); err != nil {
				return nil, chain, &Error{Class: ClassDNSError, Detail: err.Detail}
			}
		}
		if addrs := addressesOf(resp, current); len(addrs) > 0 {
			return addrs[:min(len(addrs), maxRecords)], chain, nil
		}
		// A recursive resolver already chased the chain: a CNAME without
		// records at its end means the target has none of this type.
		// Only a server that does not recurse gets asked for the target.
		if current == before || resp.RecursionAvailable {
			return nil, chain, failf(ClassNoRecords, "%s has no %s record", strings.TrimSuffix(current, "."), dns.TypeToString[qtype])
		}
	}
	return nil, chain, failf(ClassDNSError, "CNAME chain longer than %d", maxCNAMEDepth)
}

// applyCNAMEs follows the CNAME records of one answer from name onwards.
func applyCNAMEs(resp *dns.Msg, name string, chain []string) (string, []string) {
	for hop := 0; hop <= maxCNAMEDepth; hop++ {
		next := ""
		for _, rr := range resp.Answer {
			if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, name) {
				next = dns.Fqdn(c.Target)
				break
			}
		}
		if next == "" {
			break
		}
		name = next
		chain = append(chain, strings.TrimSuffix(name, "."))
	}
	return name, chain
}

func addressesOf(resp *dns.Msg, name string) []netip.Addr {
	var addrs []netip.Addr
	for _, rr := range resp.Answer {
		if !strings.EqualFold(rr.Header().Name, name) {
			continue
		}
		switch v := rr.(type) {
		case *dns.A:
			if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
				addrs = append(addrs, a)
			}
		case *dns.AAAA:
			if a, ok := netip.AddrFromSlice(v.AAAA.To16()); ok {
				addrs = append(addrs, a)
			}
		}
	}
	return addrs
}

// srvTarget is one SRV answer, in the order the probe will try it.
type srvTarget struct {
	Target   string
	Port     int
	Priority int
	Weight   int
}

// lookupSRV returns the SRV records of name ordered by RFC 2782: lowest
// priority first; within a priority the heavier weight first (a
// deterministic stand-in for the weighted random pick, so runs repeat).
func (r *resolver) lookupSRV(ctx context.Context, b *budget, name string) ([]srvTarget, *Error) {
	resp, serr := r.exchange(ctx, b, name, dns.TypeSRV)
	if serr != nil {
		return nil, serr
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, failf(ClassNXDomain, "%s does not exist (NXDOMAIN)", name)
	default:
		return nil, failf(ClassServFail, "server answered %s for %s", dns.RcodeToString[resp.Rcode], name)
	}
	var out []srvTarget
	for _, rr := range resp.Answer {
		if s, ok := rr.(*dns.SRV); ok {
			out = append(out, srvTarget{
				Target:   strings.ToLower(strings.TrimSuffix(s.Target, ".")),
				Port:     int(s.Port),
				Priority: int(s.Priority),
				Weight:   int(s.Weight),
			})
		}
	}
	if len(out) == 0 {
		return nil, failf(ClassNoRecords, "%s has no SRV record", name)
	}
	out = out[:min(len(out), maxRecords)]
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Priority != out[j].Priority {
			return out[i].Priority < out[j].Priority
		}
		if out[i].Weight != out[j].Weight {
			return out[i].Weight > out[j].Weight
		}
		return out[i].Target < out[j].Target
	})
	return out, nil
}

// resolve returns the addresses to dial for the target, recording the DNS
// step. A connect_to override by name, or an IP literal, needs no DNS.
func (r *run) resolve(ctx context.Context, t target) ([]string, bool) {
	return r.resolveOn(ctx, r.rec, t)
}

// resolveOn is resolve recording on rec, for checks that run beside the
// chain with steps of their own.
func (r *run) resolveOn(ctx context.Context, rec *recorder, t target) ([]string, bool) {
	if _, ok := overrideFor(r.p.s.ConnectTo, t.host, t.port); ok || net.ParseIP(t.host) != nil {
		return []string{t.host}, true
	}
	started := time.Now()
	lk, err := r.p.dns.lookupHost(ctx, r.budget, t.host, r.p.s.ipVersion())
	if err != nil {
		rec.record(t, StepDNS, started, "", err, "")
		return nil, false
	}
	addrs := lk.strings()
	detail := "resolved " + strings.Join(addrs, ", ")
	if len(lk.cnames) > 0 {
		detail += " via CNAME " + strings.Join(lk.cnames, " → ")
	}
	rec.record(t, StepDNS, started, "", nil, detail)
	return addrs, true
}

func (lk hostLookup) strings() []string {
	out := make([]string, 0, len(lk.addrs))
	for _, a := range lk.addrs {
		out = append(out, a.String())
	}
	return out
}
