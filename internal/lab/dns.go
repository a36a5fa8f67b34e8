package lab

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// zone is the estate's DNS data: any name below any domain, answered
// authoritatively. Names with no record at all get NXDOMAIN.
type zone struct {
	mu      sync.RWMutex
	records map[string][]dns.RR // by lower-case FQDN
	// delay is added before every answer (benchmarks inject latency).
	delay time.Duration
	// queries counts the questions received.
	queries atomic.Int64
}

func (z *zone) add(rr dns.RR) {
	z.mu.Lock()
	defer z.mu.Unlock()
	name := strings.ToLower(rr.Header().Name)
	z.records[name] = append(z.records[name], rr)
}

func (z *zone) remove(name string, rtype uint16) {
	z.mu.Lock()
	defer z.mu.Unlock()
	name = strings.ToLower(dns.Fqdn(name))
	kept := z.records[name][:0]
	for _, rr := range z.records[name] {
		if rr.Header().Rrtype != rtype {
			kept = append(kept, rr)
		}
	}
	if len(kept) == 0 {
		delete(z.records, name)
		return
	}
	z.records[name] = kept
}

func (z *zone) has(name string, rtype uint16) bool {
	z.mu.RLock()
	defer z.mu.RUnlock()
	for _, rr := range z.records[strings.ToLower(dns.Fqdn(name))] {
		if rr.Header().Rrtype == rtype {
			return true
		}
	}
	return false
}

// ServeDNS answers like a recursive resolver would: CNAMEs are followed
// inside the zone and the whole chain is put in the answer.
func (z *zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	z.queries.Add(1)
	z.mu.RLock()
	delay := z.delay
	z.mu.RUnlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = true
	// Names compressed, as every real server sends them: a large answer
	// then still fits the 64 KiB of a TCP message.
	m.Compress = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	m.Answer, m.Rcode = z.answer(strings.ToLower(q.Name), q.Qtype)
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		// As a real server does: an answer larger than the client's buffer
		// is cut and marked truncated, and the client asks again over TCP.
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

func (z *zone) answer(name string, qtype uint16) ([]dns.RR, int) {
	z.mu.RLock()
	defer z.mu.RUnlock()
	var out []dns.RR
	for hops := 0; hops < 10; hops++ {
		rrs, exists := z.records[name]
		if !exists {
			if hops == 0 {
				return nil, dns.RcodeNameError
			}
			return out, dns.RcodeSuccess
		}
		var cname *dns.CNAME
		for _, rr := range rrs {
			if rr.Header().Rrtype == qtype {
				out = append(out, dns.Copy(rr))
			}
			if c, ok := rr.(*dns.CNAME); ok && qtype != dns.TypeCNAME {
				cname = c
			}
		}
		if cname == nil {
			return out, dns.RcodeSuccess
		}
		out = append(out, dns.Copy(cname))
		name = strings.ToLower(cname.Target)
	}
	return out, dns.RcodeServerFailure
}

// dnsServer serves the zone over UDP and TCP on one loopback port.
type dnsServer struct {
	addr string
	udp  *dns.Server
	tcp  *dns.Server
}

func startDNS(z *zone) (*dnsServer, error) {
	pc, ln, err := listenUDPAndTCP()
	if err != nil {
		return nil, err
	}
	s := &dnsServer{
		addr: pc.LocalAddr().String(),
		udp:  &dns.Server{PacketConn: pc, Handler: z},
		tcp:  &dns.Server{Listener: ln, Handler: z},
	}
	started := make(chan struct{}, 2)
	s.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go func() { _ = s.udp.ActivateAndServe() }()
	go func() { _ = s.tcp.ActivateAndServe() }()
	<-started
	<-started
	return s, nil
}

// listenUDPAndTCP finds one loopback port free for both UDP and TCP: a
// resolver retries over TCP on the port it used for UDP. The kernel picks
// the UDP port; its TCP twin may be taken, so a few tries are allowed.
func listenUDPAndTCP() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for try := 0; try < 20; try++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("lab DNS: %w", err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			return pc, ln, nil
		}
		_ = pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("lab DNS: no port free for both UDP and TCP: %w", lastErr)
}

func (s *dnsServer) close() {
	_ = s.udp.Shutdown()
	_ = s.tcp.Shutdown()
}
