package lab

import "net/http"

// NTLMVerifier plays the server side of NTLM over HTTP and really verifies
// NTLMv2 responses against known passwords, so a wrong password fails.
type NTLMVerifier struct {
	// Accounts maps "DOMAIN\user" (case-insensitive) to its password.
	Accounts map[string]string
	// Domain is the NetBIOS domain the server announces.
	Domain string
}

// Handle answers one leg of the handshake. A negotiate message gets the
// challenge (responded=true); an authenticate message is verified (ok).
func (v *NTLMVerifier) Handle(w http.ResponseWriter, r *http.Request) (ok, responded bool) {
	return false, false
}
