package lab

import "strings"

// AddMAPIHTTPOnly builds an on-premises Exchange 2013 SP1 that answers a
// MAPI/HTTP client with the mapiHttp block and no EXHTTP (a build before
// 15.00.0995.014): the EWS URL is only in the WEB block's nested blocks.
func (e *Estate) AddMAPIHTTPOnly(domain, user, password string) (Mailbox, error) {
	mb, ad, err := e.AddOnPremises(domain, user, password)
	if err != nil {
		return Mailbox{}, err
	}
	ad.SetUser(mb.Address, Reply{Settings: &Settings{DisplayName: displayName(user), Server: "mail." + domain, NoEXHTTP: true}})
	return mb, nil
}

// AddAlias builds an on-premises domain where alias@domain is redirected
// with redirectAddr to primary@domain, which gets the settings: the
// server of the domain is asked twice.
func (e *Estate) AddAlias(domain, alias, primary, password string) (Mailbox, error) {
	mb, ad, err := e.AddOnPremises(domain, alias, password)
	if err != nil {
		return Mailbox{}, err
	}
	primaryAddress := primary + "@" + domain
	ad.SetUser(mb.Address, Reply{RedirectAddr: primaryAddress})
	ad.SetUser(primaryAddress, Reply{Settings: &Settings{DisplayName: displayName(primary), Server: "mail." + domain}})
	return mb, nil
}

// AddMailOnly builds a hosting provider's autodiscover.<domain> as
// automx2 or mailcow answer it: IMAP, POP3 and SMTP servers, nothing of
// Exchange, the address itself as the login name.
func (e *Estate) AddMailOnly(domain, user, password string) (Mailbox, error) {
	mb, ad, err := e.AddOnPremises(domain, user, password)
	if err != nil {
		return Mailbox{}, err
	}
	ad.SetUser(mb.Address, Reply{Settings: &Settings{DisplayName: displayName(user), Mail: []MailServer{
		{Type: "IMAP", Server: "imap." + domain, Port: 993, Encryption: "SSL", LoginName: mb.Address},
		{Type: "POP3", Server: "pop." + domain, Port: 995, Encryption: "SSL", LoginName: mb.Address},
		{Type: "SMTP", Server: "smtp." + strings.ToLower(domain), Port: 587, Encryption: "TLS", LoginName: mb.Address},
	}}})
	return mb, nil
}
