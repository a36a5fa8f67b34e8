package probe

import (
	"context"
	"fmt"
	"net"
	"strconv"
)

// NewDialer returns a dial function that resolves through the settings'
// DNS server and honours their connect_to overrides, like the probe does:
// for side channels such as an OAuth token endpoint, which should be
// reached the way the module reaches Exchange.
func NewDialer(s Settings) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, portText, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		port, err := strconv.Atoi(portText)
		if err != nil {
			return nil, fmt.Errorf("port %q: %w", portText, err)
		}
		addrs := []string{host}
		if _, byName := overrideFor(s.ConnectTo, host, port); !byName && net.ParseIP(host) == nil {
			res, err := newResolver(s.DNSServer, s.stepTimeout())
			if err != nil {
				return nil, err
			}
			lk, serr := res.lookupHost(ctx, host, s.ipVersion())
			if serr != nil {
				return nil, fmt.Errorf("resolving %s: %s", host, serr.detail)
			}
			addrs = addrs[:0]
			for _, a := range lk.addrs {
				addrs = append(addrs, a.String())
			}
		}
		conn, attempts := dialEach(ctx, addrs, port, s.ConnectTo, s.stepTimeout())
		if conn == nil {
			if n := len(attempts); n > 0 && attempts[n-1].err != nil {
				return nil, fmt.Errorf("connecting to %s: %s", addr, attempts[n-1].err.detail)
			}
			return nil, fmt.Errorf("connecting to %s: no address", addr)
		}
		return conn, nil
	}
}
