package probe_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// Hostile and slow server behaviours, each an http.Handler on the lab.
var slowServers = map[string]http.Handler{
	// trickle sends a valid head, then one byte of body every 50ms.
	"trickle": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		w.Header().Set("Content-Length", "100000")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		for i := 0; i < 2000; i++ {
			if _, err := w.Write([]byte("<")); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}),
	// silent reads the request and never answers. (Reading the body lets
	// net/http notice the client hanging up and end the handler.)
	"silent": http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}),
	// huge body is far larger than the module allows.
	"huge body": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		chunk := strings.Repeat("x", 64<<10)
		for i := 0; i < 32; i++ {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	}),
	// huge head sends 256 KiB of headers.
	"huge head": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i < 256; i++ {
			w.Header().Set(fmt.Sprintf("X-Filler-%d", i), strings.Repeat("y", 1000))
		}
		w.WriteHeader(http.StatusOK)
	}),
	// reset promises a body, sends part of it and resets the connection.
	"reset mid-body": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5000\r\n\r\n<Autodiscover xmlns=")
		_ = buf.Flush()
		if tc, ok := conn.(*tls.Conn); ok {
			if tcp, ok := tc.NetConn().(*net.TCPConn); ok {
				_ = tcp.SetLinger(0)
			}
		}
		_ = conn.Close()
	}),
}

var slowClasses = map[string][]probe.ErrorClass{
	"trickle":        {"timeout"},
	"silent":         {"timeout"},
	"huge body":      {"body_too_large", "response_too_large"},
	"huge head":      {"response_too_large"},
	"reset mid-body": {"connection_error"},
}

func slowEstate(t testing.TB) *lab.Estate {
	t.Helper()
	e, err := lab.New()
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range slowServers {
		if err := e.HTTPS(hostFor(name), h); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.BlackHole("autodiscover.blackhole.test", 443); err != nil {
		t.Fatal(err)
	}
	return e
}

func hostFor(name string) string {
	return "autodiscover." + strings.ReplaceAll(name, " ", "-") + ".test"
}

func slowSettings(e *lab.Estate) probe.Settings {
	s := settingsFor(e, lab.Mailbox{})
	s.Methods = []probe.Method{probe.MethodAutodiscoverDomain}
	s.StepTimeout = 300 * time.Millisecond
	s.MaxBodyBytes = 64 << 10
	return s
}

func TestSlowAndBrokenServersFailTheRequestStepWithinTheDeadline(t *testing.T) {
	e := slowEstate(t)
	defer e.Close()
	for name := range slowServers {
		t.Run(name, func(t *testing.T) {
			deadline := 3 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			res, err := runProbe(ctx, "x@"+strings.TrimPrefix(hostFor(name), "autodiscover."), slowSettings(e))
			if err != nil {
				t.Fatal(err)
			}
			if time.Since(start) > deadline+time.Second {
				t.Errorf("took %v, past the deadline", time.Since(start))
			}
			var req probe.Step
			for _, s := range res.Steps {
				if s.Name == probe.StepRequest {
					req = s
				}
			}
			ok := false
			for _, c := range slowClasses[name] {
				ok = ok || req.ErrorClass == c
			}
			if res.Success || req.OK || !ok {
				t.Errorf("request step %+v, want one of %v\n%s", req, slowClasses[name], res.Log())
			}
		})
	}
}

func openFDs(t testing.TB) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors here: %v", err)
	}
	return len(entries)
}

// TestThousandHostileProbesLeakNothing runs 1,000 probes against slow,
// silent, oversized, resetting and black-holed servers, then checks that
// goroutines and open file descriptors are back to where they started.
func TestThousandHostileProbesLeakNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 probes")
	}
	runtime.GC()
	baseGoroutines, baseFDs := runtime.NumGoroutine(), openFDs(t)

	e := slowEstate(t)
	kinds := []string{"blackhole"}
	for name := range slowServers {
		kinds = append(kinds, strings.ReplaceAll(name, " ", "-"))
	}
	s := slowSettings(e)
	s.StepTimeout = 100 * time.Millisecond
	const probes, parallel = 1000, 50
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	failures := make(chan string, probes)
	for i := 0; i < probes; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			res, err := runProbe(ctx, fmt.Sprintf("u%d@%s.test", i, kinds[i%len(kinds)]), s)
			if err != nil || res.Success {
				failures <- fmt.Sprintf("probe %d: err=%v success=%v", i, err, res != nil && res.Success)
			}
		}()
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	e.Close()

	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		g, fds := runtime.NumGoroutine(), openFDs(t)
		if g <= baseGoroutines+2 && fds <= baseFDs+2 {
			t.Logf("after %d probes: goroutines %d (baseline %d), open fds %d (baseline %d)", probes, g, baseGoroutines, fds, baseFDs)
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("leak after %d probes: goroutines %d (baseline %d), open fds %d (baseline %d)\n%s", probes, g, baseGoroutines, fds, baseFDs, buf[:n])
		}
		time.Sleep(100 * time.Millisecond)
	}
}
