package server

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// connLimiter caps the connections served at once, as
// netutil.LimitListener does, with one difference: at the cap, a
// keep-alive connection sitting idle between requests gives its place to
// a new one. A scraper keeps a connection per target it scraped at once;
// counting those made the next scrapes after a burst wait for the idle
// timeout. Connections in the middle of a request keep their places.
type connLimiter struct {
	slots chan struct{}
	mu    sync.Mutex
	idle  map[*limitedConn]struct{}
}

func newConnLimiter(n int) *connLimiter {
	return &connLimiter{slots: make(chan struct{}, n), idle: map[*limitedConn]struct{}{}}
}

// listener wraps l: its connections count toward the cap.
func (cl *connLimiter) listener(l net.Listener) net.Listener {
	return &limitedListener{Listener: l, cl: cl}
}

// connState is the http.Server's ConnState hook: it tells the limiter
// which connections are idle.
func (cl *connLimiter) connState(c net.Conn, state http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if state == http.StateIdle {
		cl.idle[lc] = struct{}{}
	} else {
		delete(cl.idle, lc)
	}
}

// acquire takes a place, making room by closing idle connections while
// none is free.
func (cl *connLimiter) acquire() {
	for {
		select {
		case cl.slots <- struct{}{}:
			return
		default:
		}
		if !cl.closeOneIdle() {
			// Every place is in a request: wait for one to end, looking
			// again now and then for a connection gone idle.
			select {
			case cl.slots <- struct{}{}:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

func (cl *connLimiter) closeOneIdle() bool {
	cl.mu.Lock()
	var victim *limitedConn
	for c := range cl.idle {
		victim = c
		delete(cl.idle, c)
		break
	}
	cl.mu.Unlock()
	if victim == nil {
		return false
	}
	_ = victim.Close()
	return true
}

type limitedListener struct {
	net.Listener
	cl *connLimiter
}

// Accept takes the connection from the kernel first, so that room is made
// only for a client that is there.
func (l *limitedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.cl.acquire()
	return &limitedConn{Conn: c, cl: l.cl}, nil
}

type limitedConn struct {
	net.Conn
	cl   *connLimiter
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.cl.mu.Lock()
		delete(c.cl.idle, c)
		c.cl.mu.Unlock()
		<-c.cl.slots
	})
	return err
}
