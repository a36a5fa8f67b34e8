package probe

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/go-ntlmssp"
)

// NTLM is NTLMv2 authentication over HTTP (MS-NLMP), the scheme on-premises
// Exchange offers as "NTLM" and inside "Negotiate". Username is
// "DOMAIN\user" or a user principal name "user@domain"; Workstation, when
// set, names the client machine in the messages (servers log it).
//
// NTLM authenticates a connection, not a request: its three legs (the
// NEGOTIATE message, the server's CHALLENGE, the AUTHENTICATE message) must
// travel on one keep-alive connection, which the probe guarantees by
// speaking HTTP/1.1 on a connection of its own.
//
// NTLM is chosen only when the server offers NTLM or Negotiate: a module
// configured for NTLM never falls back to Basic, which would hand the
// password itself to the server.
type NTLM struct {
	Username    string
	Password    string
	Workstation string
}

// Choose implements Authenticator. It prefers a plain NTLM challenge and
// otherwise takes Negotiate, answering it with raw NTLM tokens: Windows
// servers accept those under the Negotiate scheme, and Kerberos (the other
// mechanism Negotiate may carry) needs a domain-joined client.
func (n *NTLM) Choose(offered []Challenge) (Challenge, bool) {
	return preferredScheme(offered, "NTLM", "Negotiate")
}

// NewExchange implements Authenticator.
func (n *NTLM) NewExchange(string) Exchange { return &ntlmExchange{n: n} }

// Identity implements Authenticator.
func (n *NTLM) Identity() string { return n.Username }

// String keeps the password out of any %v rendering.
func (n *NTLM) String() string { return "NTLM(" + n.Username + ")" }

// GoString keeps the password out of %#v as well.
func (n *NTLM) GoString() string { return n.String() }

// ntlmExchange walks the two client legs of one handshake.
type ntlmExchange struct {
	n      *NTLM
	leg    int
	scheme string
}

// Respond implements Exchange. The first call answers the bare challenge
// of the first 401 with a NEGOTIATE message; the second answers the
// server's CHALLENGE with the AUTHENTICATE message. A 401 after that, or a
// second 401 that carries no challenge token, means the server refused.
func (e *ntlmExchange) Respond(_ context.Context, ch Challenge) (string, error) {
	e.leg++
	switch e.leg {
	case 1:
		e.scheme = ch.Scheme
		// The domain of NEGOTIATE is the client machine's, not the user's
		// (go-ntlmssp documents it so): it is left out, as Windows does
		// for a machine outside the domain.
		msg, err := ntlmssp.NewNegotiateMessage("", e.n.Workstation)
		if err != nil {
			return "", fmt.Errorf("building the NTLM negotiate message: %w", err)
		}
		return e.scheme + " " + base64.StdEncoding.EncodeToString(msg), nil
	case 2:
		token := strings.TrimSpace(ch.Params)
		if token == "" {
			// The server restarted the handshake instead of challenging.
			return "", ErrRejected
		}
		challenge, err := decodeNTLMChallenge(token)
		if err != nil {
			return "", err
		}
		var opts *ntlmssp.AuthenticateMessageOptions
		if e.n.Workstation != "" {
			opts = &ntlmssp.AuthenticateMessageOptions{WorkstationName: e.n.Workstation}
		}
		// go-ntlmssp splits "DOMAIN\user" itself and sends a UPN as the
		// user name with an empty domain, as Windows clients do.
		msg, err := ntlmssp.NewAuthenticateMessage(challenge, e.n.Username, e.n.Password, opts)
		if err != nil {
			return "", e.scrub(fmt.Errorf("the server's NTLM CHALLENGE message cannot be answered: %w", err))
		}
		return e.scheme + " " + base64.StdEncoding.EncodeToString(msg), nil
	default:
		return "", ErrRejected
	}
}

// scrub makes sure no error of the exchange can carry the password, even
// if a library were to quote its input.
func (e *ntlmExchange) scrub(err error) error {
	if e.n.Password == "" || !strings.Contains(err.Error(), e.n.Password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), e.n.Password, "********"))
}

// decodeNTLMChallenge decodes the server's token and checks the fixed part
// of a CHALLENGE message (MS-NLMP 2.2.1.2) so that a hostile or broken
// server gets a plain diagnosis rather than a library's struct dump.
func decodeNTLMChallenge(token string) ([]byte, error) {
	const maxToken = 16 << 10
	if len(token) > maxToken {
		return nil, fmt.Errorf("the server's NTLM challenge token is %d bytes long, more than the %d accepted", len(token), maxToken)
	}
	msg, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		return nil, errors.New("the server's NTLM challenge token is not valid base64")
	}
	const fixedLen = 48 // signature … TargetInfoFields
	switch {
	case len(msg) < 12 || string(msg[:8]) != "NTLMSSP\x00":
		return nil, errors.New("the server's challenge token is not an NTLM message")
	case binary.LittleEndian.Uint32(msg[8:12]) != 2:
		return nil, fmt.Errorf("the server sent NTLM message type %d where a CHALLENGE (type 2) belongs", binary.LittleEndian.Uint32(msg[8:12]))
	case len(msg) < fixedLen:
		return nil, fmt.Errorf("the server's NTLM CHALLENGE message is truncated (%d bytes)", len(msg))
	}
	return msg, nil
}
