package lab

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Estate is a running simulated estate. Build it with New and the Add…,
// HTTPS and HTTP methods, point a probe at DNSAddr with ConnectTo and
// RootCAs, then read Requests to see what reached each server.
type Estate struct {
	// CA signs every certificate of the estate; Rogue signs the ones that
	// must not be trusted.
	CA    *CA
	Rogue *CA

	zone *zone
	dns  *dnsServer

	mu        sync.Mutex
	closed    bool
	nextIP    int
	ips       map[string]string // host name → its loopback IPv4
	connectTo map[string]string
	servers   []*http.Server
	listeners []net.Listener
	requests  []Request
	latency   time.Duration
	msCloud   *cloud
	modern    *Autodiscover            // front door of the modern Exchange Online
	tokens    *TokenServer             // the Entra ID token endpoint
	hybrids   map[string]*Autodiscover // on-premises server per hybrid domain
}

// Request is what a lab server received.
type Request struct {
	// Server is the lab host name the server was started for.
	Server string
	// Scheme is "https" or "http".
	Scheme string
	Method string
	// Host is the Host header; SNI is the TLS server name (https only).
	Host          string
	SNI           string
	Path          string
	Authorization string
	// Header is every request header as sent.
	Header http.Header
	Time   time.Time
}

// New starts an empty estate: a CA, a rogue CA and the DNS server.
func New() (*Estate, error) {
	ca, err := NewCA("Lab Root CA")
	if err != nil {
		return nil, err
	}
	rogue, err := NewCA("Untrusted Rogue CA")
	if err != nil {
		return nil, err
	}
	z := &zone{records: map[string][]dns.RR{}}
	d, err := startDNS(z)
	if err != nil {
		return nil, err
	}
	return &Estate{
		CA:        ca,
		Rogue:     rogue,
		zone:      z,
		dns:       d,
		nextIP:    10,
		ips:       map[string]string{},
		connectTo: map[string]string{},
	}, nil
}

// Close stops every server of the estate.
func (e *Estate) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	servers, listeners := e.servers, e.listeners
	e.mu.Unlock()
	for _, s := range servers {
		_ = s.Close()
	}
	for _, l := range listeners {
		_ = l.Close()
	}
	e.dns.close()
}

// DNSQueries counts the questions the estate's DNS server received.
func (e *Estate) DNSQueries() int64 { return e.zone.queries.Load() }

// DNSAddr is host:port of the estate's DNS server.
func (e *Estate) DNSAddr() string { return e.dns.addr }

// ConnectTo maps the standard ports of every published loopback address to
// the listener really serving it (a copy; safe to keep).
func (e *Estate) ConnectTo() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.connectTo)
}

// RootCAs trusts the estate's CA (and not the rogue one).
func (e *Estate) RootCAs() *x509.CertPool { return e.CA.Pool() }

// SetLatency delays every DNS answer, every TLS handshake and every HTTP
// answer by d, to model the round trips of a real network. (A TCP connect
// cannot be delayed without root; it stays a loopback round trip.)
func (e *Estate) SetLatency(d time.Duration) {
	e.mu.Lock()
	e.latency = d
	e.mu.Unlock()
	e.zone.mu.Lock()
	e.zone.delay = d
	e.zone.mu.Unlock()
}

// Requests returns a copy of everything the estate's servers received.
func (e *Estate) Requests() []Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Request(nil), e.requests...)
}

// RequestsTo returns what the server started for host received.
func (e *Estate) RequestsTo(host string) []Request {
	var out []Request
	for _, r := range e.Requests() {
		if strings.EqualFold(r.Server, host) {
			out = append(out, r)
		}
	}
	return out
}

// ResetRequests forgets the recorded requests.
func (e *Estate) ResetRequests() {
	e.mu.Lock()
	e.requests = nil
	e.mu.Unlock()
}

// AddA publishes A records for name.
func (e *Estate) AddA(name string, ips ...string) {
	for _, ip := range ips {
		e.zone.add(&dns.A{Hdr: hdr(name, dns.TypeA), A: net.ParseIP(ip).To4()})
	}
}

// AddAAAA publishes AAAA records for name.
func (e *Estate) AddAAAA(name string, ips ...string) {
	for _, ip := range ips {
		e.zone.add(&dns.AAAA{Hdr: hdr(name, dns.TypeAAAA), AAAA: net.ParseIP(ip)})
	}
}

// AddCNAME publishes name as an alias of target.
func (e *Estate) AddCNAME(name, target string) {
	e.zone.add(&dns.CNAME{Hdr: hdr(name, dns.TypeCNAME), Target: dns.Fqdn(target)})
}

// AddSRV publishes an SRV record.
func (e *Estate) AddSRV(name string, priority, weight, port int, target string) {
	e.zone.add(&dns.SRV{Hdr: hdr(name, dns.TypeSRV), Priority: uint16(priority), Weight: uint16(weight), Port: uint16(port), Target: dns.Fqdn(target)})
}

// AddTXT publishes a TXT record; it makes a name exist in DNS without
// giving it an address.
func (e *Estate) AddTXT(name, text string) {
	e.zone.add(&dns.TXT{Hdr: hdr(name, dns.TypeTXT), Txt: []string{text}})
}

// RemoveRecords deletes the records of one type of name.
func (e *Estate) RemoveRecords(name string, rtype uint16) { e.zone.remove(name, rtype) }

func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: strings.ToLower(dns.Fqdn(name)), Rrtype: t, Class: dns.ClassINET, Ttl: 60}
}

// HostOption changes how HTTPS or HTTP publishes a host.
type HostOption func(*hostConfig)

type hostConfig struct {
	cert       *CertSpec
	rogue      bool
	clientAuth tls.ClientAuthType
	ipv6       bool
	noDNS      bool
}

// WithCert serves a certificate for spec instead of one naming the host.
func WithCert(spec CertSpec) HostOption {
	return func(c *hostConfig) { c.cert = &spec }
}

// WithUntrustedCert serves a certificate naming the host but signed by the
// rogue CA, which the probe does not trust.
func WithUntrustedCert() HostOption { return func(c *hostConfig) { c.rogue = true } }

// WithClientAuth makes the TLS server ask for (or require) a client
// certificate.
func WithClientAuth(t tls.ClientAuthType) HostOption { return func(c *hostConfig) { c.clientAuth = t } }

// OnIPv6 serves the host on ::1 and publishes only an AAAA record. One
// estate can have one IPv6 host per port.
func OnIPv6() HostOption { return func(c *hostConfig) { c.ipv6 = true } }

// WithoutDNS starts the server but publishes no record for it.
func WithoutDNS() HostOption { return func(c *hostConfig) { c.noDNS = true } }

// IPOf returns the loopback IPv4 address given to host, allocating one (and
// publishing its A record, with both standard ports closed) on first use.
func (e *Estate) IPOf(host string) (string, error) {
	host = strings.ToLower(host)
	e.mu.Lock()
	ip, ok := e.ips[host]
	if !ok {
		if e.nextIP > 250 {
			e.mu.Unlock()
			return "", errors.New("lab: out of loopback addresses")
		}
		ip = fmt.Sprintf("127.0.0.%d", e.nextIP)
		e.nextIP++
		e.ips[host] = ip
	}
	e.mu.Unlock()
	if !ok {
		e.AddA(host, ip)
		for _, port := range []int{443, 80} {
			if err := e.closePort(ip, port); err != nil {
				return "", err
			}
		}
	}
	return ip, nil
}

// closePort points ip:port at a port nothing listens on, so a connection
// there is refused at once.
func (e *Estate) closePort(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return fmt.Errorf("lab: finding a closed port on %s: %w", ip, err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	e.setConnectTo(ip, port, closed)
	return nil
}

func (e *Estate) setConnectTo(ip string, port int, dest string) {
	e.mu.Lock()
	e.connectTo[net.JoinHostPort(ip, strconv.Itoa(port))] = dest
	e.mu.Unlock()
}

// HTTPS serves h over TLS as host on port 443 (as the probe sees it).
func (e *Estate) HTTPS(host string, h http.Handler, opts ...HostOption) error {
	cfg := hostConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	tlsCfg, err := e.tlsConfig(host, cfg)
	if err != nil {
		return err
	}
	ln, ip, err := e.listen(host, cfg)
	if err != nil {
		return err
	}
	e.setConnectTo(ip, 443, ln.Addr().String())
	e.serve(tls.NewListener(&slowListener{Listener: ln, e: e}, tlsCfg), e.recording(host, "https", h))
	return nil
}

// tlsConfig issues the certificate cfg asks for.
func (e *Estate) tlsConfig(host string, cfg hostConfig) (*tls.Config, error) {
	spec := CertSpec{Names: []string{host}}
	if cfg.cert != nil {
		spec = *cfg.cert
	}
	issuer := e.CA
	if cfg.rogue {
		issuer = e.Rogue
	}
	cert, err := issuer.Issue(spec)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: cfg.clientAuth, MinVersion: tls.VersionTLS12}, nil
}

// HTTP serves h in plain HTTP as host on port 80 (as the probe sees it).
func (e *Estate) HTTP(host string, h http.Handler, opts ...HostOption) error {
	cfg := hostConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	ln, ip, err := e.listen(host, cfg)
	if err != nil {
		return err
	}
	e.setConnectTo(ip, 80, ln.Addr().String())
	e.serve(ln, e.recording(host, "http", h))
	return nil
}

// HTTPSNode serves h over TLS as one more node of host: a new loopback
// address is published as another A record of the name, as behind a
// DNS-balanced pool. Each node can have its own certificate.
func (e *Estate) HTTPSNode(host, node string, h http.Handler, opts ...HostOption) (string, error) {
	nodeName := node + "." + host
	ip, err := e.ipWithoutDNS(nodeName)
	if err != nil {
		return "", err
	}
	e.AddA(host, ip)
	if err := e.closePort(ip, 80); err != nil {
		return "", err
	}
	cfg := hostConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	tlsCfg, err := e.tlsConfig(host, cfg)
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return "", fmt.Errorf("lab: listening on %s: %w", ip, err)
	}
	e.track(ln)
	e.setConnectTo(ip, 443, ln.Addr().String())
	e.serve(tls.NewListener(&slowListener{Listener: ln, e: e}, tlsCfg), e.recording(host, "https", h))
	return ip, nil
}

// slowListener delays the first bytes a server sends on each connection
// by the injected latency, so that a TLS handshake costs one round trip
// as on a real network (the server's first flight answers the client's).
type slowListener struct {
	net.Listener
	e *Estate
}

func (l *slowListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &slowFirstWrite{Conn: c, e: l.e}, nil
}

type slowFirstWrite struct {
	net.Conn
	e       *Estate
	started bool
}

func (c *slowFirstWrite) Write(p []byte) (int, error) {
	if !c.started {
		c.started = true
		c.e.mu.Lock()
		d := c.e.latency
		c.e.mu.Unlock()
		if d > 0 {
			time.Sleep(d)
		}
	}
	return c.Conn.Write(p)
}

// BlackHole makes host:port accept TCP connections and then never say a
// word, like a stalled load balancer.
func (e *Estate) BlackHole(host string, port int) error {
	ln, ip, err := e.listen(host, hostConfig{})
	if err != nil {
		return err
	}
	e.setConnectTo(ip, port, ln.Addr().String())
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return nil
}

// AddDeadAddress publishes one more A record for host whose ports refuse
// connections: one dead node behind a name.
func (e *Estate) AddDeadAddress(host string) (string, error) {
	ip, err := e.IPOf("dead-" + strings.ReplaceAll(host, ".", "-") + ".lab.invalid")
	if err != nil {
		return "", err
	}
	e.AddA(host, ip)
	return ip, nil
}

func (e *Estate) listen(host string, cfg hostConfig) (net.Listener, string, error) {
	if cfg.ipv6 {
		ln, err := net.Listen("tcp", "[::1]:0")
		if err != nil {
			return nil, "", fmt.Errorf("lab: IPv6 loopback unavailable: %w", err)
		}
		e.track(ln)
		if !cfg.noDNS && !e.zone.has(host, dns.TypeAAAA) {
			e.AddAAAA(host, "::1")
		}
		return ln, "::1", nil
	}
	var ip string
	var err error
	if cfg.noDNS {
		ip, err = e.ipWithoutDNS(host)
	} else {
		ip, err = e.IPOf(host)
	}
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, "", fmt.Errorf("lab: listening on %s: %w", ip, err)
	}
	e.track(ln)
	return ln, ip, nil
}

func (e *Estate) ipWithoutDNS(host string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ip, ok := e.ips[strings.ToLower(host)]; ok {
		return ip, nil
	}
	ip := fmt.Sprintf("127.0.0.%d", e.nextIP)
	e.nextIP++
	e.ips[strings.ToLower(host)] = ip
	return ip, nil
}

func (e *Estate) track(ln net.Listener) {
	e.mu.Lock()
	e.listeners = append(e.listeners, ln)
	e.mu.Unlock()
}

func (e *Estate) serve(ln net.Listener, h http.Handler) {
	// Probes hang up on purpose (bad certificates, timeouts): the server's
	// complaints about that are noise.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	e.mu.Lock()
	e.servers = append(e.servers, srv)
	e.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// recording wraps a handler so every request is kept, and the injected
// latency is paid once per answer.
func (e *Estate) recording(server, scheme string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := Request{
			Server:        server,
			Scheme:        scheme,
			Method:        r.Method,
			Host:          r.Host,
			Path:          r.URL.Path,
			Authorization: r.Header.Get("Authorization"),
			Header:        r.Header.Clone(),
			Time:          time.Now(),
		}
		if r.TLS != nil {
			rec.SNI = r.TLS.ServerName
		}
		e.mu.Lock()
		e.requests = append(e.requests, rec)
		latency := e.latency
		e.mu.Unlock()
		if latency > 0 {
			time.Sleep(latency)
		}
		h.ServeHTTP(w, r)
	})
}
