package probe

import (
	"context"
	"strings"
	"sync"
	"time"
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

func (r *run) checkAddress(ctx context.Context, h tlsHost, addr string) AddressCheck {
	ac := AddressCheck{Host: h.host, Address: addr}
	add := func(name StepName, started time.Time, err *stepError, detail string) {
		st := Step{Host: h.host, Port: h.port, Address: addr, Name: name, OK: err == nil,
			Start: started.Sub(r.start), Duration: time.Since(started), Detail: detail}
		if err != nil {
			st.ErrorClass = err.class
			st.Detail = strings.TrimPrefix(st.Detail+": "+err.detail, ": ")
		}
		ac.Steps = append(ac.Steps, st)
	}
	started := time.Now()
	conn, attempts := dialEach(ctx, []string{addr}, h.port, r.s.ConnectTo, r.s.stepTimeout())
	if conn == nil {
		err := failf("timeout", "no connection was tried before the deadline")
		if len(attempts) > 0 && attempts[0].err != nil {
			err = attempts[0].err
		}
		add(StepTCP, started, err, "")
		return ac
	}
	add(StepTCP, started, nil, "connected")
	started = time.Now()
	out, err := handshake(ctx, conn, h.host, r.s.RootCAs, r.s.now(), r.s.stepTimeout())
	if err != nil {
		_ = conn.Close()
		add(StepTLSHandshake, started, err, "")
		return ac
	}
	defer out.conn.Close()
	add(StepTLSHandshake, started, nil, tlsVersionName(out.state.Version))
	now := time.Now()
	add(StepCertName, now, out.nameErr, "")
	add(StepCertTrust, now, out.trustErr, "")
	add(StepCertValidity, now, out.validityErr, "NotAfter "+out.cert.NotAfter.UTC().Format(time.RFC3339))
	cert := out.cert
	cert.Address = addr
	ac.Cert = &cert
	return ac
}
