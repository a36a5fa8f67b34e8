package lab

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/spnego"
)

// NegotiateAccepted is the WWW-Authenticate value IIS sends with the
// response to a request it accepted by Kerberos: a NegTokenResp saying
// accept-completed for the Kerberos mechanism.
const NegotiateAccepted = "Negotiate oRQwEqADCgEAoQsGCSqGSIb3EgECAg=="

// ntlmsspOID is the NTLM mechanism in an SPNEGO mechanism list (MS-NLMP
// 1.9); gokrb5 knows only the Kerberos ones.
const ntlmsspOID = "1.3.6.1.4.1.311.2.2.10"

var ntlmsspSignature = []byte("NTLMSSP\x00")

// gokrb5 puts the verified client's credentials in the context it returns
// under this key, a plain string constant it does not export (gokrb5
// v8.4.4, spnego/http.go ctxCredentials).
const gokrb5CredentialsKey = "github.com/jcmturner/gokrb5/v8/ctxCredentials"

// KerberosVerifier checks "Authorization: Negotiate <base64>" headers
// holding a SPNEGO NegTokenInit, or a raw Kerberos AP-REQ, for one service
// principal with that service's keytab, as IIS with Windows authentication
// does. It is safe for concurrent use.
//
// gokrb5 keeps one replay cache per process: an authenticator is good
// once, so a client must make a fresh token for each request, as real
// clients do.
type KerberosVerifier struct {
	svc       *spnego.SPNEGO
	principal string
	realm     string

	mu       sync.Mutex
	accepted []string
}

// NewKerberosVerifier verifies tickets for servicePrincipal ("HTTP/host",
// without the realm) of realm with the keys in keytab (MIT format, as
// (*KDC).Keytab gives it).
func NewKerberosVerifier(kt []byte, servicePrincipal, realm string) (*KerberosVerifier, error) {
	if servicePrincipal == "" || realm == "" {
		return nil, errors.New("kerberos: a service principal and a realm are needed")
	}
	servicePrincipal = strings.TrimSuffix(servicePrincipal, "@"+realm)
	k := keytab.New()
	if err := k.Unmarshal(kt); err != nil {
		return nil, fmt.Errorf("kerberos: reading the keytab: %w", err)
	}
	var found bool
	for _, e := range k.Entries {
		if e.Principal.Realm == realm && strings.Join(e.Principal.Components, "/") == servicePrincipal {
			found = true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("kerberos: the keytab holds no key for %s@%s", servicePrincipal, realm)
	}
	return &KerberosVerifier{
		svc: spnego.SPNEGOService(k,
			service.KeytabPrincipal(servicePrincipal),
			// An MIT KDC's PAC carries none of the logon information
			// gokrb5 would decode, and nothing here needs it.
			service.DecodePAC(false)),
		principal: servicePrincipal,
		realm:     realm,
	}, nil
}

// Verify returns the client principal ("user@REALM") when authorization
// holds a valid Kerberos AP-REQ for the service.
//
// kerberos is false, with no error, when the header holds nothing for
// Kerberos: no Negotiate token at all, another scheme, or an NTLM token
// (raw "NTLMSSP\x00", or in an SPNEGO token that carries one or chooses
// the NTLM mechanism), so the caller can hand it to NTLM. Anything else
// under Negotiate is Kerberos's to judge, garbage included, and fails
// with kerberos true and an error.
func (v *KerberosVerifier) Verify(authorization string) (client string, kerberos bool, err error) {
	// gokrb5 parses what a client sends; a crash on some token it did not
	// foresee must fail the request, not the server.
	defer func() {
		if r := recover(); r != nil {
			client, kerberos, err = "", true, fmt.Errorf("kerberos: malformed token (%v)", r)
		}
	}()
	scheme, token, _ := strings.Cut(strings.TrimSpace(authorization), " ")
	if !strings.EqualFold(scheme, "Negotiate") {
		return "", false, nil
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", false, nil
	}
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		return "", true, fmt.Errorf("kerberos: the Negotiate token is not base64: %w", err)
	}
	if bytes.HasPrefix(raw, ntlmsspSignature) {
		return "", false, nil
	}
	st, err := parseNegotiate(raw)
	if err != nil {
		return "", true, err
	}
	switch {
	case st.Init:
		t := st.NegTokenInit
		if bytes.HasPrefix(t.MechTokenBytes, ntlmsspSignature) {
			return "", false, nil
		}
		if len(t.MechTypes) == 0 {
			// gokrb5 indexes the list without looking.
			return "", true, errors.New("kerberos: the SPNEGO token offers no mechanism")
		}
		if t.MechTypes[0].String() == ntlmsspOID && len(t.MechTokenBytes) == 0 {
			return "", false, nil
		}
	case st.Resp:
		t := st.NegTokenResp
		if bytes.HasPrefix(t.ResponseToken, ntlmsspSignature) || t.SupportedMech.String() == ntlmsspOID {
			return "", false, nil
		}
	}
	ok, ctx, status := v.svc.AcceptSecContext(st)
	// A KRB-ERROR inside the token is "ok" to gokrb5 with status
	// unavailable and no client: only a completed context authenticates.
	if !ok || status.Code != gssapi.StatusComplete || ctx == nil {
		return "", true, fmt.Errorf("kerberos: token refused: %s", status.Error())
	}
	creds, _ := ctx.Value(gokrb5CredentialsKey).(*credentials.Credentials)
	if creds == nil || !creds.Authenticated() {
		return "", true, errors.New("kerberos: gokrb5 accepted the token but named no client")
	}
	client = creds.UserName() + "@" + creds.Domain()
	v.mu.Lock()
	v.accepted = append(v.accepted, client)
	v.mu.Unlock()
	return client, true, nil
}

// parseNegotiate reads a SPNEGO token, or a raw Kerberos GSS token, which
// some clients send under Negotiate and IIS accepts, as a NegTokenInit
// offering Kerberos.
func parseNegotiate(raw []byte) (*spnego.SPNEGOToken, error) {
	var st spnego.SPNEGOToken
	serr := st.Unmarshal(raw)
	if serr == nil {
		return &st, nil
	}
	var k5 spnego.KRB5Token
	if err := k5.Unmarshal(raw); err != nil {
		return nil, fmt.Errorf("kerberos: neither a SPNEGO nor a Kerberos token: %w", serr)
	}
	return &spnego.SPNEGOToken{
		Init: true,
		NegTokenInit: spnego.NegTokenInit{
			MechTypes:      []asn1.ObjectIdentifier{k5.OID},
			MechTokenBytes: raw,
		},
	}, nil
}

// Accepted returns the client principals accepted so far, in order.
func (v *KerberosVerifier) Accepted() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.accepted...)
}

// Principal is the service principal verified, with its realm.
func (v *KerberosVerifier) Principal() string { return v.principal + "@" + v.realm }
