// Package collector turns one probe.Result into Prometheus metrics. It
// knows nothing of HTTP: the exporter registers a Collector on a fresh
// registry per /probe request and serves that registry.
//
// Label values come from fixed vocabularies (probe.Method, probe.StepName)
// and host names; no error text and no e-mail address ever becomes a label
// value, so series stay bounded and stable while the estate does not change.
package collector
