package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	kitlog "github.com/go-kit/log"

	"github.com/autodiscover-exporter/autodiscover_exporter/config"
	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// countingWriter is a ResponseWriter that keeps nothing but the size, so
// that the benchmark measures rendering, not buffering megabytes.
type countingWriter struct {
	header http.Header
	n      int
}

func (w *countingWriter) Header() http.Header { return w.header }
func (w *countingWriter) WriteHeader(int)     {}
func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}

// demoResults probes every demo mailbox once and returns the results, so
// that a benchmark renders what real chains produce: hybrid paths four
// hops long, expired certificates, loops, unmet expectations, v2.
func demoResults(b *testing.B) []*probe.Result {
	b.Helper()
	l := startLab(b)
	s, err := New(Options{ConfigFile: l.configPath, TimeoutOffset: 500 * time.Millisecond, HistoryLimit: 1, BackoffInitial: time.Minute, BackoffMax: time.Hour, MaxConcurrent: 8}, kitlog.NewNopLogger())
	if err != nil {
		b.Fatal(err)
	}
	h := s.routes()
	var out []*probe.Result
	for _, mb := range s.Config().Mailboxes {
		req := httptest.NewRequest(http.MethodGet, "/probe?target="+mb.Name, nil)
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "15")
		h.ServeHTTP(httptest.NewRecorder(), req)
		rec, ok := s.history.lastOf(mb.Name)
		if !ok {
			b.Fatalf("no result for %s", mb.Name)
		}
		out = append(out, rec.Result)
	}
	return out
}

func BenchmarkLandingPageWith5000Mailboxes(b *testing.B) {
	results := demoResults(b)
	const mailboxes = 5000
	cfg := &config.Config{}
	// The history keeps its default 200 recent probes besides the last
	// of each mailbox, as the exporter does.
	s := &Server{cur: &Loaded{Config: cfg}, history: newHistory(200), logger: kitlog.NewNopLogger(), metrics: newMetrics()}
	for i := range mailboxes {
		name := fmt.Sprintf("mailbox-%04d", i)
		cfg.Mailboxes = append(cfg.Mailboxes, &config.Mailbox{Name: name, Module: "onprem-basic", Labels: map[string]string{"site": fmt.Sprintf("site-%d", i%40), "flow": "onprem"}})
		s.history.add(name, "onprem-basic", results[i%len(results)])
	}
	h := s.routes()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	var size int
	b.ReportAllocs()
	for b.Loop() {
		w := &countingWriter{header: http.Header{}}
		h.ServeHTTP(w, req)
		size = w.n
	}
	b.ReportMetric(float64(size)/(1<<20), "MiB/page")
}
