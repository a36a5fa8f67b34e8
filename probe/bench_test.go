package probe_test

import (
	"context"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// BenchmarkHybridChain runs the seven-candidate, three-hop hybrid flow
// against the loopback estate: the exporter's own cost per chain.
func BenchmarkHybridChain(b *testing.B) {
	e := newEstate(b)
	mb, err := e.AddHybrid("contoso.test", "alice", "Secr3t!")
	if err != nil {
		b.Fatal(err)
	}
	p, err := probe.NewProber(settingsFor(e, mb), probe.Env{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := p.Run(ctx, probe.Target{Address: mb.Address})
		cancel()
		if err != nil || !res.Success {
			b.Fatalf("chain failed: %v %v", err, res.Reason)
		}
	}
}
