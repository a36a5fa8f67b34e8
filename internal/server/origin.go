package server

import (
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
)

// ActionHeader must accompany a request to an endpoint that changes state
// (/-/reload, /-/backoff/reset). A browser sends a custom header across
// origins only after a CORS preflight the exporter never grants, so a
// page on another site cannot trigger these endpoints with a form or a
// fetch; curl and the probe command send it.
const ActionHeader = "X-Autodiscover-Exporter"

// sameOrigin lets h act only on a request from the exporter's own origin:
// it carries ActionHeader, any Origin or Referer names the host it was
// sent to, and that host is one the exporter answers as (so a name an
// attacker's DNS points at loopback — DNS rebinding — is refused).
func (s *Server) sameOrigin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			h(w, r) // the handler answers 405
			return
		}
		if reason := s.crossSite(r); reason != "" {
			_ = levelWarn(s, "msg", "refused a state-changing request", "path", r.URL.Path, "reason", reason)
			http.Error(w, "refused: "+reason, http.StatusForbidden)
			return
		}
		h(w, r)
	}
}

// crossSite says why r is not a same-origin request from a client the
// exporter trusts, or "" when it is.
func (s *Server) crossSite(r *http.Request) string {
	if r.Header.Get(ActionHeader) == "" {
		return "the request lacks the " + ActionHeader + " header (curl -X POST -H '" + ActionHeader + ": 1' …)"
	}
	if !s.knownHost(r.Host) {
		return "Host " + r.Host + " is not a name of this exporter (add it with --web.allowed-hosts)"
	}
	for _, h := range []string{"Origin", "Referer"} {
		v := r.Header.Get(h)
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return h + " " + v + " is another origin than " + r.Host
		}
	}
	return ""
}

// knownHost accepts the names the exporter answers as: an IP address
// (rebinding needs a name), localhost, this machine's host name, and the
// names of --web.allowed-hosts.
func (s *Server) knownHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if net.ParseIP(host) != nil || host == "localhost" || slices.Contains(s.allowedHosts, host) {
		return true
	}
	name, err := os.Hostname()
	return err == nil && strings.EqualFold(name, host)
}
