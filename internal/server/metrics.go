package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes the exporter's own metrics, build_info included.
const namespace = "autodiscover_exporter"

// metrics are the exporter's own metrics, served on /metrics. Probe
// metrics never go here: each /probe answer has a registry of its own.
type metrics struct {
	registry          *prometheus.Registry
	inFlight          prometheus.Gauge
	waiting           prometheus.Gauge
	probes            *prometheus.CounterVec
	reloadSuccessful  prometheus.Gauge
	reloadSuccessTime prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		registry:          prometheus.NewRegistry(),
		inFlight:          gauge("probes_in_flight", "Chains running now."),
		waiting:           gauge("probes_waiting", "Scrapes waiting for a probe slot (--probe.max-concurrent)."),
		reloadSuccessful:  gauge("config_last_reload_successful", "Whether the last configuration reload succeeded (1) or was rejected (0)."),
		reloadSuccessTime: gauge("config_last_reload_success_timestamp_seconds", "When the configuration was last loaded successfully."),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "probes_total",
			Help:      "Probe requests by result: success, failure, or bad_request (unknown target or module).",
		}, []string{"result"}),
	}
	// Every result shows from the start, so that rate() sees the first one.
	for _, r := range []string{"success", "failure", "bad_request"} {
		m.probes.WithLabelValues(r)
	}
	m.reloadSuccessful.Set(1)
	m.reloadSuccessTime.SetToCurrentTime()
	m.registry.MustRegister(
		versioncollector.NewCollector(namespace),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.probes, m.reloadSuccessful, m.reloadSuccessTime, m.inFlight, m.waiting,
	)
	return m
}

func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help})
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}
