// Package demo is what the exporter's --demo flag runs against: a
// simulated Exchange estate on loopback (package lab) holding healthy,
// degraded and broken mailboxes, and a configuration file that probes
// each of them with its own module.
//
// The mailboxes are chosen so that every dashboard panel and every alert
// shipped in deploy/ has something to show. The estate's builders live in
// lab; this package only decides which mailboxes exist, how they are
// described and labelled, what is expected of them, and how their modules
// differ from plain Basic authentication.
package demo
