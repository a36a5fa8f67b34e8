package server

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestWarmUpProbesEveryMailboxAndStopsWithTheContext(t *testing.T) {
	l := startLab(t)
	s, _ := newTestServer(t, l.configPath)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.WarmUp(ctx, time.Hour); close(done) }()
	var page string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, page = get(t, s.routes(), "/", nil)
		if strings.Count(page, "last step log</a>") == len(s.Config().Mailboxes) {
			break
		}
	}
	if n, want := strings.Count(page, "last step log</a>"), len(s.Config().Mailboxes); n != want {
		t.Errorf("%d of %d mailboxes probed by the warm-up:\n%s", n, want, page)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("WarmUp did not return after the context ended")
	}
}
