package probe

import (
	"context"
	"sync"
)

// tlsHost is a TLS host of the run with the addresses DNS gave for it.
type tlsHost struct {
	host  string
	port  int
	addrs []string
}

// noteTLSHost remembers the addresses of a TLS host the first time it is
// resolved.
func (r *run) noteTLSHost(t target, addrs []string) {
	for _, h := range r.tlsHosts {
		if h.host == t.host && h.port == t.port {
			return
		}
	}
	r.tlsHosts = append(r.tlsHosts, tlsHost{host: t.host, port: t.port, addrs: addrs})
}

// checkAddresses checks TCP, TLS and the certificate on every address of
// every TLS host the run met, in parallel: a dead node costs one step
// timeout, not one per node.
func (r *run) checkAddresses(ctx context.Context) {
	type job struct {
		h    tlsHost
		addr string
	}
	var jobs []job
	for _, h := range r.tlsHosts {
		// Only the operator's own estate: a host a redirect led to in
		// another domain does not get its every address dialled.
		if !r.inPairedDomain(h.host) {
			continue
		}
		for _, a := range h.addrs {
			jobs = append(jobs, job{h, a})
		}
	}
	checks := make([]AddressCheck, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			checks[i] = r.checkAddress(ctx, j.h, j.addr)
		}()
	}
	wg.Wait()
	r.res.AddressChecks = checks
}

// checkAddress is the chain's TLS dial against one address, with steps of
// its own.
func (r *run) checkAddress(ctx context.Context, h tlsHost, addr string) AddressCheck {
	rec := newRecorder(r.start, 5)
	out, _ := r.openTLS(ctx, rec, target{host: h.host, port: h.port}, []string{addr})
	ac := AddressCheck{Host: h.host, Address: addr}
	if out != nil {
		_ = out.conn.Close()
		cert := out.cert
		ac.Cert = &cert
	}
	ac.Steps = rec.steps
	return ac
}
