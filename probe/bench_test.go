package probe_test

import (
	"context"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// BenchmarkHybridChain runs the seven-candidate, three-hop hybrid flow
// against the loopback estate: the exporter's own cost per chain, alone
// ("pox"), with SOAP Autodiscover over the same candidates ("soap") and
// with the federation check as well ("soap_federation").
func BenchmarkHybridChain(b *testing.B) {
	for _, bc := range []struct {
		name      string
		soap, fed bool
	}{{"pox", false, false}, {"soap", true, false}, {"soap_federation", true, true}} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEstate(b)
			mb, err := e.AddHybrid("contoso.test", "alice", "Secr3t!")
			if err != nil {
				b.Fatal(err)
			}
			s := settingsFor(e, mb)
			if bc.soap {
				s = withSOAP(s, bc.fed)
			}
			p, err := probe.NewProber(s, probe.Env{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				res, err := p.Run(ctx, probe.Target{Address: mb.Address})
				cancel()
				if err != nil || !res.Success || bc.fed && !res.Federation.OK {
					b.Fatalf("chain failed: %v %v", err, res.Reason)
				}
			}
		})
	}
}
