package probe

import (
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/internal/lab"
)

// labSettings points a probe at the estate — its DNS server, its CA, its
// connect_to map — with the mailbox's allowed domains and, when it has an
// account, its Basic credentials. Every probe test starts from it.
func labSettings(e *lab.Estate, mb lab.Mailbox) Settings {
	s := Settings{
		DNSServer:      e.DNSAddr(),
		RootCAs:        e.RootCAs(),
		ConnectTo:      e.ConnectTo(),
		AllowedDomains: mb.AllowedDomains,
		StepTimeout:    5 * time.Second,
	}
	if mb.Username != "" {
		s.Auth = AuthSettings{Type: AuthBasic, Username: mb.Username, Password: mb.Password}
	}
	return s
}

// redirectRule is the rule of a 3xx (pathRule) or of a redirectUrl.
func redirectRule(pathRule bool) urlRule {
	if pathRule {
		return poxRedirect
	}
	return redirectURLRule
}
