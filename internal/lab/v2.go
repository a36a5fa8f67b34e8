package lab

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// V2 is an Autodiscover v2 (autodiscover.json) front end: anonymous GETs
// for a mailbox and a protocol answered with {"Protocol","Url"}, a 302 to
// another v2 URL (a hybrid mailbox that lives on premises), or a 400 JSON
// error, as Exchange Online does.
type V2 struct {
	// URLs maps lower-case address → protocol (lower-case) → endpoint URL.
	URLs map[string]map[string]string
	// Redirect maps lower-case address → the https v2 base URL of the
	// server that owns the mailbox, e.g. https://autodiscover.contoso.test.
	Redirect map[string]string
	// Tenants, when set, are the domains this front end knows: for an
	// address of any other domain it answers as Exchange Online does, with
	// a 302 back to autodiscover.<domain>.
	Tenants []string
	mu      sync.Mutex
}

// supportedV2 is the protocol list Exchange Online accepts (shortened).
var supportedV2 = []string{"autodiscoverv1", "activesync", "ews", "rest", "substrate"}

func (v *V2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(code, msg string) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("jsonerror", "true")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"ErrorCode": code, "ErrorMessage": msg})
	}
	w.Header().Set("request-id", "5f3e2a10-lab0-4c2e-9d1a-000000000001")
	w.Header().Set("X-FEServer", "LAB01FE")
	path := r.URL.Path
	lower := strings.ToLower(path)
	if !strings.HasPrefix(lower, "/autodiscover/autodiscover.json") {
		http.NotFound(w, r)
		return
	}
	address := r.URL.Query().Get("Email")
	if rest, ok := strings.CutPrefix(lower, "/autodiscover/autodiscover.json/v1.0/"); ok {
		address, _ = url.PathUnescape(path[len(path)-len(rest):])
	}
	if address == "" {
		fail("MandatoryParameterMissing", "A valid email address must be provided.")
		return
	}
	protocol := strings.ToLower(r.URL.Query().Get("Protocol"))
	if protocol == "" {
		fail("MissingProtocol", "A protocol must be provided.")
		return
	}
	known := false
	for _, p := range supportedV2 {
		known = known || p == protocol
	}
	if !known {
		fail("ProtocolNotSupported", "The given protocol value '"+protocol+"' is invalid. Supported values are '"+strings.Join(supportedV2, ",")+"'.")
		return
	}
	address = strings.ToLower(address)
	v.mu.Lock()
	redirect := v.Redirect[address]
	if domain := address[strings.LastIndexByte(address, '@')+1:]; redirect == "" && len(v.Tenants) > 0 && !slices.Contains(v.Tenants, domain) {
		redirect = "https://autodiscover." + domain
	}
	endpoint := v.URLs[address][protocol]
	v.mu.Unlock()
	if redirect != "" {
		q := url.Values{"Email": {address}, "Protocol": {r.URL.Query().Get("Protocol")}, "RedirectCount": {"1"}}
		w.Header().Set("Location", strings.TrimSuffix(redirect, "/")+"/autodiscover/autodiscover.json?"+q.Encode())
		w.WriteHeader(http.StatusFound)
		return
	}
	if endpoint == "" {
		// Exchange Online answers for any address of a tenant domain; an
		// unknown one gets its generic endpoint.
		endpoint = "https://" + hostOnly(r.Host) + "/EWS/Exchange.asmx"
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]string{"Protocol": r.URL.Query().Get("Protocol"), "Url": endpoint})
}
