package lab

import "time"

// TokenHost is the host of the token endpoint AddOAuth2Only starts, like
// login.microsoftonline.com.
const TokenHost = "login.lab.test"

// AddNTLMOnly builds autodiscover.<domain> as most Exchange servers are
// configured on premises: it offers Negotiate and NTLM, no Basic, and
// verifies the NTLMv2 handshake of netbios\user. The returned mailbox's
// Username is the down-level logon name.
func (e *Estate) AddNTLMOnly(domain, netbios, user, password string) (Mailbox, error) {
	address := user + "@" + domain
	logon := netbios + `\` + user
	ad := &Autodiscover{
		NTLM:       &NTLMVerifier{Accounts: map[string]string{logon: password}, Domain: netbios},
		Challenges: []string{"Negotiate", "NTLM"},
		Users:      map[string]Reply{address: {Settings: &Settings{DisplayName: displayName(user), Server: "mail." + domain}}},
	}
	if err := e.HTTPS("autodiscover."+domain, ad); err != nil {
		return Mailbox{}, err
	}
	return Mailbox{Address: address, Username: logon, Password: password}, nil
}

// AddOAuth2Only builds a cloud-only domain whose autodiscover.<domain>
// takes nothing but Bearer tokens (app-only ones too, as EWS does), and
// registers clientID with the estate's token endpoint for the
// client-credentials grant.
func (e *Estate) AddOAuth2Only(domain, user, clientID, secret string) (Mailbox, *TokenServer, error) {
	tokens, err := e.TokenServer()
	if err != nil {
		return Mailbox{}, nil, err
	}
	tokens.AddClient(clientID, secret)
	address := user + "@" + domain
	ad := &Autodiscover{
		Tokens:     tokens,
		Challenges: []string{`Bearer authorization_uri="https://` + TokenHost + `/common/oauth2/authorize"`},
		Users:      map[string]Reply{address: {Settings: &Settings{DisplayName: displayName(user), Server: "outlook." + domain, MicrosoftOnline: true}}},
	}
	if err := e.HTTPS("autodiscover."+domain, ad); err != nil {
		return Mailbox{}, nil, err
	}
	return Mailbox{Address: address}, tokens, nil
}

// AddV2 builds an Exchange Online host that answers Autodiscover v2
// (autodiscover.json) anonymously for user@domain, with its EWS,
// ActiveSync and Autodiscover v1 URLs on host itself.
func (e *Estate) AddV2(domain, user, host string) (Mailbox, error) {
	address := user + "@" + domain
	v2 := &V2{URLs: map[string]map[string]string{address: {
		"ews":            "https://" + host + "/EWS/Exchange.asmx",
		"activesync":     "https://" + host + "/Microsoft-Server-ActiveSync",
		"autodiscoverv1": "https://" + host + "/autodiscover/autodiscover.xml",
	}}}
	if err := e.HTTPS(host, v2); err != nil {
		return Mailbox{}, err
	}
	return Mailbox{Address: address}, nil
}

// AddDegradedPool builds an on-premises domain whose autodiscover.<domain>
// is a DNS-balanced pool of three addresses: the first node works, the
// second is dead, and the third works with a certificate that expires at
// notAfter. A probe that takes the first address succeeds; only a check
// of every address sees the other two.
func (e *Estate) AddDegradedPool(domain, user, password string, notAfter time.Time) (Mailbox, error) {
	mb, ad, err := e.AddOnPremises(domain, user, password)
	if err != nil {
		return Mailbox{}, err
	}
	host := "autodiscover." + domain
	if _, err := e.AddDeadAddress(host); err != nil {
		return Mailbox{}, err
	}
	if _, err := e.HTTPSNode(host, "node3", ad, WithCert(CertSpec{Names: []string{host}, NotAfter: notAfter})); err != nil {
		return Mailbox{}, err
	}
	return mb, nil
}
