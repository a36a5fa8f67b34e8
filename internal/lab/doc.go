// Package lab is a simulated Exchange estate on loopback: an in-process DNS
// server (miekg/dns), TLS and plain HTTP servers on 127.0.0.0/8 and ::1 with
// certificates from a CA generated at start, scriptable Autodiscover
// behaviour, and a record of every request each server received.
//
// Tests, benchmarks and the exporter's --demo mode all use it. Nothing in it
// ever talks to an address outside loopback: every published host name
// resolves to a loopback address, and the estate's ConnectTo map sends the
// standard ports (443, 80) of those addresses to the real listeners, which
// run on random ports so that no root is needed.
package lab
