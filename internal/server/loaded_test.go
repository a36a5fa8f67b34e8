package server

import "testing"

// A prober lives as long as its configuration load: scrapes share it (and
// its token cache), and a reload replaces it together with the config.
func TestProbersAreBuiltOncePerLoad(t *testing.T) {
	l := startLab(t)
	s, _ := newTestServer(t, l.configPath)
	first := s.loaded()
	p1, ok := first.Prober("demo-hybrid-alice")
	if !ok {
		t.Fatal("no prober for demo-hybrid-alice")
	}
	if p2, _ := s.loaded().Prober("demo-hybrid-alice"); p2 != p1 {
		t.Error("two lookups in one load gave two probers")
	}
	for name := range first.Config.Modules {
		if _, ok := first.Prober(name); !ok {
			t.Errorf("module %s has no prober", name)
		}
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if p3, _ := s.loaded().Prober("demo-hybrid-alice"); p3 == p1 {
		t.Error("a reload kept the old prober")
	}
}
