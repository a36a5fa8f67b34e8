package probe_test

import (
	"context"
	"testing"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// newEstate starts a simulated estate that is closed with the test.
func newEstate(t testing.TB) *lab.Estate {
	t.Helper()
	e, err := lab.New()
	if err != nil {
		t.Fatalf("starting the lab: %v", err)
	}
	t.Cleanup(e.Close)
	return e
}

// settingsFor points a probe at the estate with the mailbox's credentials.
func settingsFor(e *lab.Estate, mb lab.Mailbox) probe.Settings { return probe.LabSettings(e, mb) }

// runProbe builds a prober for s, as a configuration load does, and runs
// it once for address.
func runProbe(ctx context.Context, address string, s probe.Settings) (*probe.Result, error) {
	p, err := probe.NewProber(s, probe.Env{})
	if err != nil {
		return nil, err
	}
	return p.Run(ctx, probe.Target{Address: address})
}

func mustRun(t *testing.T, address string, s probe.Settings) *probe.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := runProbe(ctx, address, s)
	if err != nil {
		t.Fatalf("Run(%q): %v", address, err)
	}
	return res
}
