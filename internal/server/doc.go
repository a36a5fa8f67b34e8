// Package server is the exporter's HTTP service: /probe runs the
// Autodiscover chain of one configured mailbox and answers with its
// metrics, /metrics carries the exporter's own, /sd lists the mailboxes
// for Prometheus' HTTP service discovery, and the landing page, /logs and
// /config show what happened in a browser. /-/reload and
// /-/backoff/reset change the running state; SIGHUP handling and the
// command line stay with the command.
//
// A Server owns every piece of state a request can reach: the live
// configuration, the probe slots that bound concurrent chains, the
// min_interval cache, the credential back-off and the history of recent
// results. There is no package-level state, so tests run as many servers
// side by side as they like.
//
// The server reaches the probe in one place, Server.runChain, which turns
// a configured mailbox and module into probe settings and runs the chain.
package server
