package probe_test

import (
	"testing"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

func TestEndpointSmoke(t *testing.T) {
	e := newEstate(t)
	mb, _, err := e.AddExchange("contoso.test", "alice", "pw")
	must(t, err)
	s := settingsFor(e, mb)
	s.Endpoints = probe.EndpointProtocols
	s.EndpointsScope = probe.ScopeBoth
	res := mustRun(t, mb.Address, s)
	t.Log(res.Log())
}
