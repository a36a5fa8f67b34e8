package server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log/level"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
)

// startListening runs s.ListenAndServe on a free loopback port until the
// test ends and returns the address once it answers.
func startListening(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.ListenAndServe(ctx, flagsFor(addr), slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/-/healthy"); err == nil {
			resp.Body.Close()
			return addr
		}
	}
	t.Fatal("the server never answered")
	return ""
}

// keepAlive opens a connection, makes one request on it and leaves it idle.
func keepAlive(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET /-/healthy HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return c
}

// The exporter's own server does not keep idle connections forever, and
// serves at most --web.max-connections at once.
func TestTheServerClosesIdleConnectionsAndCapsThem(t *testing.T) {
	l := startLab(t)
	var logs strings.Builder
	s, err := New(Options{ConfigFile: l.configPath, HistoryLimit: 10, MaxConcurrent: 4, IdleTimeout: 500 * time.Millisecond, MaxConnections: 600}, testLogger(&logs, level.AllowInfo()))
	if err != nil {
		t.Fatal(err)
	}
	addr := startListening(t, s)
	conns := make([]net.Conn, 500)
	for i := range conns {
		conns[i] = keepAlive(t, addr)
	}
	// Generous: the idle timeout is half a second.
	deadline := time.Now().Add(10 * time.Second)
	for _, c := range conns {
		_ = c.SetReadDeadline(deadline)
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("an idle connection stayed open: %v", err)
		}
		c.Close()
	}

}

// At --web.max-connections the connections in the middle of a request are
// served and a new one waits; but an idle keep-alive connection gives its
// place to one that waits. A scraper keeps one connection per target it
// scraped at once, so after a burst a cap counting idle connections left
// the next scrapes waiting for the idle timeout.
func TestAtTheConnectionCapAnIdleKeepAliveGivesWayToANewConnection(t *testing.T) {
	l := startLab(t)
	var logs strings.Builder
	capped, err := New(Options{ConfigFile: l.configPath, HistoryLimit: 10, MaxConcurrent: 4, IdleTimeout: time.Minute, MaxConnections: 3}, testLogger(&logs, level.AllowInfo()))
	if err != nil {
		t.Fatal(err)
	}
	addr := startListening(t, capped)
	request := func(c net.Conn) (*http.Response, error) {
		_, _ = io.WriteString(c, "GET /-/healthy HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		return http.ReadResponse(bufio.NewReader(c), nil)
	}

	// Three idle keep-alive connections: a fourth is served at once.
	idle := []net.Conn{keepAlive(t, addr), keepAlive(t, addr), keepAlive(t, addr)}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	fourth, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer fourth.Close()
	started := time.Now()
	if resp, err := request(fourth); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a new connection was not served while idle ones held the cap: %v", err)
	}
	if took := time.Since(started); took > 5*time.Second {
		t.Errorf("the new connection waited %s (the idle timeout is a minute)", took)
	}
	closed := 0
	for _, c := range idle {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			closed++
		}
	}
	if closed != 1 {
		t.Errorf("%d idle connections were closed to make room, want 1", closed)
	}

	// Three connections in the middle of a request: a fourth waits.
	other, err := New(Options{ConfigFile: l.configPath, HistoryLimit: 10, MaxConcurrent: 4, IdleTimeout: time.Minute, MaxConnections: 3}, testLogger(&logs, level.AllowInfo()))
	if err != nil {
		t.Fatal(err)
	}
	addr = startListening(t, other)
	var busy []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET /-/healthy HTTP/1.1\r\n") // headers not finished
		busy = append(busy, c)
	}
	time.Sleep(200 * time.Millisecond)
	waiting, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	_, _ = io.WriteString(waiting, "GET /-/healthy HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
	_ = waiting.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := waiting.Read(make([]byte, 1)); err == nil || !isTimeout(err) {
		t.Fatalf("a fourth connection was served over a cap of three busy ones: %v", err)
	}
	busy[0].Close()
	_ = waiting.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(waiting), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the waiting connection was not served once a slot freed: %v", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// A scrape with module= is a result of its own that min_interval serves
// like any other: it does not reach Exchange again within the interval.
func TestModuleOverridesDoNotBypassMinInterval(t *testing.T) {
	l := startLab(t)
	path := writeLabConfig(t,
		map[string]*config.Module{"srv": l.basicModule(t, "frank@expiring.test", l.password), "other": l.basicModule(t, "frank@expiring.test", l.password)},
		&config.Mailbox{Name: "frank", Address: "frank@expiring.test", Module: "srv", MinInterval: config.Duration(time.Hour)})
	s, _ := newTestServer(t, path)
	get(t, s.Handler(), "/probe?target=frank&module=other", nil)
	before := len(l.estate.RequestsTo("autodiscover.expiring.test"))
	_, body := get(t, s.Handler(), "/probe?target=frank&module=other", nil)
	if n := len(l.estate.RequestsTo("autodiscover.expiring.test")); n != before {
		t.Errorf("a module= scrape within min_interval reached Exchange (%d requests, want %d)", n, before)
	}
	if strings.Contains(body, "autodiscover_probe_result_age_seconds 0\n") {
		t.Errorf("the second scrape was not served from the cache:\n%s", body)
	}
}
