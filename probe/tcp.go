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
	err      *stepError
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
// bounded by timeout, and reports every try.
func dialEach(ctx context.Context, addrs []string, port int, connectTo map[string]string, timeout time.Duration) (net.Conn, []dialAttempt) {
	var attempts []dialAttempt
	for _, a := range addrs {
		if ctx.Err() != nil {
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

func classifyDialError(err error, timeout time.Duration) *stepError {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return failf("refused", "connection refused")
	case isTimeout(err):
		return failf("timeout", "no answer within %s", timeout)
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EADDRNOTAVAIL):
		return failf("unreachable", "no route to the address")
	}
	return failf("tcp_error", "%v", err)
}

// describeAttempts renders the tries for the step log:
// "127.0.0.20 refused (0 ms), 127.0.0.21 connected (1 ms)".
func describeAttempts(attempts []dialAttempt) string {
	parts := make([]string, 0, len(attempts))
	for _, a := range attempts {
		where := a.addr
		if a.dialed != "" && !strings.HasPrefix(a.dialed, bracketIfV6(a.addr)+":") {
			where += " via " + a.dialed
		}
		if a.err != nil {
			parts = append(parts, fmt.Sprintf("%s %s (%s)", where, a.err.class, ms(a.duration)))
		} else {
			parts = append(parts, fmt.Sprintf("%s connected (%s)", where, ms(a.duration)))
		}
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
