package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/exporter-toolkit/web"
)

func flagsFor(addr string) *web.FlagConfig {
	systemd, webConfig := false, ""
	return &web.FlagConfig{WebListenAddresses: &[]string{addr}, WebSystemdSocket: &systemd, WebConfigFile: &webConfig}
}

func TestListenAndServeServesUntilTheContextEndsThenShutsDown(t *testing.T) {
	l := startLab(t)
	s, logs := newTestServer(t, l.configPath)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx, flagsFor(addr), slog.New(slog.NewTextHandler(io.Discard, nil))) }()

	healthy := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !healthy; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/-/healthy"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			healthy = resp.StatusCode == http.StatusOK && string(body) == "Healthy\n"
		}
	}
	if !healthy {
		t.Fatal("the server never answered /-/healthy")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ListenAndServe after the context ended = %v, want nil", err)
		}
	case <-time.After(shutdownGrace + 5*time.Second):
		t.Fatal("ListenAndServe did not return after the context ended")
	}
	if !strings.Contains(logs.String(), `msg="shutting down"`) {
		t.Errorf("the shutdown was not logged:\n%s", logs.String())
	}
	if _, err := http.Get("http://" + addr + "/-/healthy"); err == nil {
		t.Error("still serving after the shutdown")
	}
}

func TestListenAndServeReturnsTheListeningError(t *testing.T) {
	l := startLab(t)
	var logs strings.Builder
	s, err := New(Options{ConfigFile: l.configPath}, testLogger(&logs, level.AllowInfo()))
	if err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	err = s.ListenAndServe(context.Background(), flagsFor(busy.Addr().String()), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("ListenAndServe on a busy port = %v, want the bind error", err)
	}
}

func TestHandlerServesPprofOnlyWhenAskedTo(t *testing.T) {
	l := startLab(t)
	for _, enable := range []bool{false, true} {
		s, err := New(Options{ConfigFile: l.configPath, EnablePprof: enable}, testLogger(io.Discard, level.AllowInfo()))
		if err != nil {
			t.Fatal(err)
		}
		code, _ := get(t, s.Handler(), "/debug/pprof/", nil)
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[enable]; code != want {
			t.Errorf("EnablePprof %v: /debug/pprof/ = %d, want %d", enable, code, want)
		}
		if code, _ := get(t, s.Handler(), "/-/healthy", nil); code != http.StatusOK {
			t.Errorf("EnablePprof %v: /-/healthy = %d", enable, code)
		}
	}
}
