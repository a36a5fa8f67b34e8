package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// dialAttempt is one TCP connect to one address.
type dialAttempt struct {
	addr     string // the address DNS gave (or the connect_to target)
	dialed   string // where the connection really went (after connect_to)
	duration time.Duration
	err      *Error
}

// overrideFor returns the connect_to target for host:port, if any. The key
// may name the host or one of its addresses.
func overrideFor(connectTo map[string]string, host string, port int) (string, bool) {
	if len(connectTo) == 0 {
		return "", false
	}
	target, ok := connectTo[net.JoinHostPort(strings.ToLower(host), strconv.Itoa(port))]
	return target, ok
}

// dialEach connects to each address in turn until one answers, each try
// bounded by timeout and paid from b, and reports every try.
func dialEach(ctx context.Context, b *budget, addrs []string, port int, connectTo map[string]string, timeout time.Duration) (net.Conn, []dialAttempt) {
	var attempts []dialAttempt
	for _, a := range addrs {
		if ctx.Err() != nil {
			break
		}
		if err := b.dial(); err != nil {
			attempts = append(attempts, dialAttempt{addr: a, err: err})
			break
		}
		dest := net.JoinHostPort(a, strconv.Itoa(port))
		if t, ok := overrideFor(connectTo, a, port); ok {
			dest = t
		}
		start := time.Now()
		dctx, cancel := context.WithTimeout(ctx, timeout)
		conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", dest)
		cancel()
		at := dialAttempt{addr: a, dialed: dest, duration: time.Since(start)}
		if err != nil {
			at.err = classifyDialError(err, timeout)
			attempts = append(attempts, at)
			continue
		}
		attempts = append(attempts, at)
		return conn, attempts
	}
	return nil, attempts
}

// connect dials the target's addresses in turn and records the tcp step
// with every attempt in its detail.
func (r *run) connect(ctx context.Context, rec *recorder, t target, addrs []string) (net.Conn, string) {
	started := time.Now()
	conn, attempts := dialEach(ctx, r.budget, addrs, t.port, r.p.s.ConnectTo, r.p.s.stepTimeout())
	var last dialAttempt
	if len(attempts) > 0 {
		last = attempts[len(attempts)-1]
	}
	detail := fmt.Sprintf("port %d: %s", t.port, describeAttempts(attempts))
	if conn == nil {
		err := last.err
		if err == nil {
			err = failf(ClassTimeout, "the deadline was reached before a connection was tried")
		}
		rec.record(t, StepTCP, started, last.addr, &Error{Class: err.Class, Detail: "no address accepted the connection"}, detail)
		return nil, ""
	}
	rec.record(t, StepTCP, started, last.addr, nil, detail)
	return conn, last.addr
}

func classifyDialError(err error, timeout time.Duration) *Error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return failf(ClassRefused, "connection refused")
	case isTimeout(err):
		return failf(ClassTimeout, "no answer within %s", timeout)
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EADDRNOTAVAIL):
		return failf(ClassUnreachable, "no route to the address")
	}
	return failf(ClassTCPError, "%v", err)
}

// describeAttempts renders the tries for the step log:
// "127.0.0.20 refused (0 ms), 127.0.0.21 connected (1 ms)". A single try
// goes without its duration: the step line shows that already.
func describeAttempts(attempts []dialAttempt) string {
	parts := make([]string, 0, len(attempts))
	for _, a := range attempts {
		where := a.addr
		if a.dialed != "" && !strings.HasPrefix(a.dialed, bracketIfV6(a.addr)+":") {
			where += " via " + a.dialed
		}
		what := "connected"
		if a.err != nil {
			what = string(a.err.Class)
		}
		if len(attempts) > 1 {
			what += " (" + ms(a.duration) + ")"
		}
		parts = append(parts, where+" "+what)
	}
	return strings.Join(parts, ", ")
}

func bracketIfV6(a string) string {
	if ip, err := netip.ParseAddr(a); err == nil && ip.Is6() {
		return "[" + a + "]"
	}
	return a
}

func ms(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
