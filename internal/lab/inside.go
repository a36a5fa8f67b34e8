package lab

import (
	"fmt"
	"strings"
)

// The inside view: what a domain-joined client sees. Active Directory's
// SCPs live in a real slapd (StartDirectory) and Kerberos tickets come
// from a real MIT KDC (StartKDC); these helpers put them into the
// estate's DNS and address map and serve the Exchange they point at.

// PublishDirectory makes the directory reachable as host on the standard
// LDAP ports (389 with StartTLS, 636 with TLS from the start), as a
// domain controller's name is. The directory's certificate must name
// host.
func (e *Estate) PublishDirectory(host string, d *Directory) error {
	ip, err := e.IPOf(host)
	if err != nil {
		return err
	}
	e.setConnectTo(ip, 389, d.Addr())
	e.setConnectTo(ip, 636, d.LDAPSAddr())
	return nil
}

// AddInternalAutodiscover serves Autodiscover for address at host (a
// Client Access server's internal name, such as mail.corp.<domain>, which
// SCPs name), behind a Basic challenge for password. The settings name
// host as the server.
func (e *Estate) AddInternalAutodiscover(host, address, password string) (*Autodiscover, error) {
	return e.serveInternal(host, address, &Autodiscover{Accounts: map[string]string{address: password}})
}

// AddKerberosAutodiscover serves Autodiscover for address at host behind
// Windows authentication that takes Kerberos only: the 401 offers
// Negotiate, and v verifies the ticket with the host's HTTP service key.
func (e *Estate) AddKerberosAutodiscover(host, address string, v *KerberosVerifier) (*Autodiscover, error) {
	return e.serveInternal(host, address, &Autodiscover{Kerberos: v, Challenges: []string{"Negotiate"}})
}

// serveInternal gives ad the settings of address on host and serves it
// there.
func (e *Estate) serveInternal(host, address string, ad *Autodiscover) (*Autodiscover, error) {
	ad.Users = map[string]Reply{strings.ToLower(address): {Settings: &Settings{
		DisplayName: displayName(strings.SplitN(address, "@", 2)[0]),
		Server:      host,
	}}}
	if err := e.HTTPS(host, ad); err != nil {
		return nil, fmt.Errorf("lab: serving %s: %w", host, err)
	}
	return ad, nil
}
