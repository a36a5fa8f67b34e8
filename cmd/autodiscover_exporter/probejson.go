package main

import (
	"encoding/json"
	"io"
	"math"
	"time"

	"github.com/autodiscover-exporter/autodiscover_exporter/probe"
)

// The JSON view of a probe result, printed by probe --output json. It is a
// contract with scripts, documented in the README: keys are snake_case,
// durations are seconds as numbers, times are RFC 3339 in UTC, every key
// is always present (lists are [] rather than missing, objects that do not
// apply are null), and keys are only ever added. It is built from
// probe.Result field by field rather than by tagging probe's types, so
// that a field added to the probe package does not reach scripts (or
// leak) without a decision here.

type probeJSON struct {
	Mailbox string `json:"mailbox"`
	Success bool   `json:"success"`
	// ChainSuccess is the POX chain's own verdict; success also needs v2
	// and the expectations.
	ChainSuccess       bool               `json:"chain_success"`
	Reason             string             `json:"reason"`
	Failure            *failureJSON       `json:"failure"`
	FinalURL           string             `json:"final_url"`
	RedirectHops       int                `json:"redirect_hops"`
	DurationSeconds    float64            `json:"duration_seconds"`
	ErrorCode          string             `json:"error_code"`
	ErrorMessage       string             `json:"error_message"`
	ErrorSchema        string             `json:"error_schema"`
	Steps              []stepJSON         `json:"steps"`
	Certificates       []certificateJSON  `json:"certificates"`
	AddressChecks      []addressCheckJSON `json:"address_checks"`
	Response           *responseJSON      `json:"response"`
	V2                 []v2JSON           `json:"v2"`
	Expectations       []expectationJSON  `json:"expectations"`
	AuthBackoffSeconds float64            `json:"auth_backoff_seconds"`
	EndpointHosts      []endpointHostJSON `json:"endpoint_hosts"`
	Endpoints          []endpointJSON     `json:"endpoints"`
	// EndpointsMissing are the module's endpoint kinds the answer named no
	// URL for.
	EndpointsMissing []string `json:"endpoints_missing"`
	// SOAP and Federation are null unless the module runs method soap
	// and the federation check.
	SOAP       *soapJSON       `json:"soap"`
	Federation *federationJSON `json:"federation"`
	// SCP is null unless the module runs method scp.
	SCP *scpJSON `json:"scp"`
}

type scpJSON struct {
	OK        bool         `json:"ok"`
	Directory string       `json:"directory"`
	Site      string       `json:"site"`
	Records   int          `json:"records"`
	Pointers  int          `json:"pointers"`
	URLs      []scpURLJSON `json:"urls"`
}

type scpURLJSON struct {
	URL   string `json:"url"`
	Host  string `json:"host"`
	Scope string `json:"scope"`
	Tried bool   `json:"tried"`
	OK    bool   `json:"ok"`
}

type soapJSON struct {
	OK            bool              `json:"ok"`
	Reason        string            `json:"reason"`
	URL           string            `json:"url"`
	Mailbox       string            `json:"mailbox"`
	EWSURL        string            `json:"ews_url"`
	EWSURLSource  string            `json:"ews_url_source"`
	Settings      map[string]string `json:"settings"`
	SettingErrors []soapErrorJSON   `json:"setting_errors"`
	ErrorCode     string            `json:"error_code"`
	ErrorMessage  string            `json:"error_message"`
	ServerVersion string            `json:"server_version"`
	Redirects     int               `json:"redirects"`
}

type soapErrorJSON struct {
	Setting      string `json:"setting"`
	ErrorCode    string `json:"error_code"`
	ErrorMessage string `json:"error_message"`
}

type federationJSON struct {
	OK             bool              `json:"ok"`
	Reason         string            `json:"reason"`
	URL            string            `json:"url"`
	ApplicationURI string            `json:"application_uri"`
	Domains        []string          `json:"domains"`
	TokenIssuers   []tokenIssuerJSON `json:"token_issuers"`
	ErrorCode      string            `json:"error_code"`
	ErrorMessage   string            `json:"error_message"`
	WSSecurityURL  string            `json:"wssecurity_url"`
	WSSecurityOK   bool              `json:"wssecurity_ok"`
}

type tokenIssuerJSON struct {
	URI      string `json:"uri"`
	Endpoint string `json:"endpoint"`
}

type endpointHostJSON struct {
	Host string `json:"host"`
	Port int    `json:"port"`
	// SharedWithChain: the chain checked the host and the same
	// certificate came back; steps is then empty.
	SharedWithChain bool       `json:"shared_with_chain"`
	OK              bool       `json:"ok"`
	Steps           []stepJSON `json:"steps"`
}

type endpointJSON struct {
	Protocol        string     `json:"protocol"`
	What            string     `json:"what"`
	Scope           string     `json:"scope"`
	Source          string     `json:"source"`
	URL             string     `json:"url"`
	Host            string     `json:"host"`
	Port            int        `json:"port"`
	OK              bool       `json:"ok"`
	DurationSeconds float64    `json:"duration_seconds"`
	Steps           []stepJSON `json:"steps"`
}

type failureJSON struct {
	Hop      int    `json:"hop"`
	Method   string `json:"method"`
	Host     string `json:"host"`
	Step     string `json:"step"`
	Class    string `json:"class"`
	Sentence string `json:"sentence"`
	// StepIndex points into steps; -1 when the failure is an expectation.
	StepIndex int `json:"step_index"`
}

type stepJSON struct {
	Hop    int    `json:"hop"`
	Method string `json:"method"`
	// Mailbox is the address discovered at this hop; a redirectAddr
	// changes it.
	Mailbox         string  `json:"mailbox"`
	Host            string  `json:"host"`
	Port            int     `json:"port"`
	Address         string  `json:"address"`
	URL             string  `json:"url"`
	Name            string  `json:"name"`
	OK              bool    `json:"ok"`
	ErrorClass      string  `json:"error_class"`
	Detail          string  `json:"detail"`
	StartSeconds    float64 `json:"start_seconds"`
	DurationSeconds float64 `json:"duration_seconds"`
}

type certificateJSON struct {
	Host      string   `json:"host"`
	Address   string   `json:"address"`
	Subject   string   `json:"subject"`
	Issuer    string   `json:"issuer"`
	DNSNames  []string `json:"dns_names"`
	NotBefore string   `json:"not_before"`
	NotAfter  string   `json:"not_after"`
	// ChainNotAfter is null when the chain did not verify.
	ChainNotAfter *string `json:"chain_not_after"`
	// DaysLeft is counted from when the JSON was written, to a tenth of a
	// day like the cert_min_days expectation; negative once expired.
	DaysLeft   float64 `json:"days_left"`
	NameOK     bool    `json:"name_ok"`
	TrustOK    bool    `json:"trust_ok"`
	ValidityOK bool    `json:"validity_ok"`
}

type addressCheckJSON struct {
	Host    string           `json:"host"`
	Address string           `json:"address"`
	Steps   []stepJSON       `json:"steps"`
	Cert    *certificateJSON `json:"certificate"`
}

type responseJSON struct {
	Schema          string   `json:"schema"`
	Action          string   `json:"action"`
	RedirectAddr    string   `json:"redirect_addr"`
	RedirectURL     string   `json:"redirect_url"`
	User            userJSON `json:"user"`
	MicrosoftOnline bool     `json:"microsoft_online"`
	// Server, EWSURL and EWSURLSource are what the exporter reads out of
	// the protocols (probe.Response.Server and EWSURLFrom).
	Server        string             `json:"server"`
	EWSURL        string             `json:"ews_url"`
	EWSURLSource  string             `json:"ews_url_source"`
	Protocols     []protocolJSON     `json:"protocols"`
	MobileServers []mobileServerJSON `json:"mobile_servers"`
	Error         *responseErrorJSON `json:"error"`
}

type userJSON struct {
	DisplayName             string `json:"display_name"`
	LegacyDN                string `json:"legacy_dn"`
	AutoDiscoverSMTPAddress string `json:"autodiscover_smtp_address"`
	DeploymentID            string `json:"deployment_id"`
	EMailAddress            string `json:"email_address"`
}

type protocolJSON struct {
	Type                   string        `json:"type"`
	Version                string        `json:"version"`
	Server                 string        `json:"server"`
	ServerVersion          string        `json:"server_version"`
	AuthPackage            string        `json:"auth_package"`
	ASURL                  string        `json:"as_url"`
	EWSURL                 string        `json:"ews_url"`
	OOFURL                 string        `json:"oof_url"`
	OABURL                 string        `json:"oab_url"`
	UMURL                  string        `json:"um_url"`
	ECPURL                 string        `json:"ecp_url"`
	OWAURL                 string        `json:"owa_url"`
	MailStoreInternalURL   string        `json:"mail_store_internal_url"`
	MailStoreExternalURL   string        `json:"mail_store_external_url"`
	AddressBookInternalURL string        `json:"address_book_internal_url"`
	AddressBookExternalURL string        `json:"address_book_external_url"`
	Port                   int           `json:"port"`
	Encryption             string        `json:"encryption"`
	LoginName              string        `json:"login_name"`
	Internal               *webScopeJSON `json:"internal"`
	External               *webScopeJSON `json:"external"`
}

type webScopeJSON struct {
	OWAURL    string         `json:"owa_url"`
	Protocols []protocolJSON `json:"protocols"`
}

type mobileServerJSON struct {
	Type string `json:"type"`
	URL  string `json:"url"`
	Name string `json:"name"`
}

type responseErrorJSON struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	DebugData string `json:"debug_data"`
	ID        string `json:"id"`
	Time      string `json:"time"`
}

type v2JSON struct {
	Protocol     string `json:"protocol"`
	OK           bool   `json:"ok"`
	URL          string `json:"url"`
	Host         string `json:"host"`
	ErrorCode    string `json:"error_code"`
	ErrorMessage string `json:"error_message"`
	Redirects    int    `json:"redirects"`
}

type expectationJSON struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// writeProbeJSON writes res as one indented JSON document. HTML escaping
// is off: URLs with & should read as they are.
func writeProbeJSON(w io.Writer, res *probe.Result, now time.Time) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(newProbeJSON(res, now))
}

func newProbeJSON(res *probe.Result, now time.Time) probeJSON {
	out := probeJSON{
		Mailbox:            res.Mailbox,
		Success:            res.Success,
		ChainSuccess:       res.ChainSuccess,
		Reason:             res.Reason,
		FinalURL:           res.FinalURL,
		RedirectHops:       res.RedirectHops,
		DurationSeconds:    res.Duration.Seconds(),
		ErrorCode:          res.ErrorCode,
		ErrorMessage:       res.ErrorMessage,
		ErrorSchema:        string(res.ErrorSchema),
		Steps:              convertAll(res.Steps, newStepJSON),
		Certificates:       convertAll(res.Certificates, func(c probe.CertInfo) certificateJSON { return newCertificateJSON(c, now) }),
		AddressChecks:      convertAll(res.AddressChecks, func(a probe.AddressCheck) addressCheckJSON { return newAddressCheckJSON(a, now) }),
		V2:                 convertAll(res.V2, newV2JSON),
		Expectations:       convertAll(res.Expectations, newExpectationJSON),
		AuthBackoffSeconds: res.AuthBackoff.Seconds(),
		EndpointHosts: convertAll(res.EndpointHosts, func(h probe.EndpointHost) endpointHostJSON {
			return endpointHostJSON{Host: h.Host, Port: h.Port, SharedWithChain: h.SharedWithChain, OK: h.OK, Steps: convertAll(h.Steps, newStepJSON)}
		}),
		Endpoints: convertAll(res.Endpoints, func(c probe.EndpointCheck) endpointJSON {
			return endpointJSON{Protocol: string(c.Protocol), What: c.What, Scope: string(c.Scope), Source: c.Source, URL: c.URL, Host: c.Host, Port: c.Port,
				OK: c.OK, DurationSeconds: c.Duration.Seconds(), Steps: convertAll(c.Steps, newStepJSON)}
		}),
		EndpointsMissing: convertAll(res.EndpointsMissing, func(p probe.EndpointProtocol) string { return string(p) }),
	}
	if s := res.SOAP; s != nil {
		settings := make(map[string]string, len(s.Settings))
		for _, u := range s.Settings {
			settings[u.Name] = u.Value
		}
		out.SOAP = &soapJSON{OK: s.OK, Reason: s.Reason, URL: s.URL, Mailbox: s.Mailbox, EWSURL: s.EWSURL, EWSURLSource: s.EWSSource, Settings: settings,
			SettingErrors: convertAll(s.SettingErrors, func(e probe.UserSettingError) soapErrorJSON {
				return soapErrorJSON{Setting: e.Name, ErrorCode: e.ErrorCode, ErrorMessage: e.ErrorMessage}
			}),
			ErrorCode: s.ErrorCode, ErrorMessage: s.ErrorMessage, ServerVersion: s.ServerVersion, Redirects: s.Redirects}
	}
	if f := res.Federation; f != nil {
		out.Federation = &federationJSON{OK: f.OK, Reason: f.Reason, URL: f.URL, ApplicationURI: f.ApplicationURI, Domains: convertAll(f.Domains, func(d string) string { return d }),
			TokenIssuers: convertAll(f.TokenIssuers, func(t probe.TokenIssuer) tokenIssuerJSON { return tokenIssuerJSON{URI: t.URI, Endpoint: t.Endpoint} }),
			ErrorCode:    f.ErrorCode, ErrorMessage: f.ErrorMessage, WSSecurityURL: f.WSSecurityURL, WSSecurityOK: f.WSSecurityOK}
	}
	if s := res.SCP; s != nil {
		out.SCP = &scpJSON{OK: s.OK, Directory: s.Directory, Site: s.Site, Records: s.Records, Pointers: s.Pointers,
			URLs: convertAll(s.URLs, func(u probe.SCPURL) scpURLJSON {
				return scpURLJSON{URL: u.URL, Host: u.Host, Scope: u.Scope, Tried: u.Tried, OK: u.OK}
			})}
	}
	if f := res.Failure; f != nil {
		out.Failure = &failureJSON{Hop: f.Hop, Method: string(f.Method), Host: f.Host, Step: string(f.Step), Class: string(f.Class), Sentence: f.Sentence, StepIndex: f.StepIndex}
	}
	if res.Response != nil {
		out.Response = newResponseJSON(res.Response)
	}
	return out
}

// convertAll maps in to its JSON view, never returning nil: an empty list
// prints as [], so that scripts need not tell a missing key from none.
func convertAll[In, Out any](in []In, convert func(In) Out) []Out {
	out := make([]Out, 0, len(in))
	for _, v := range in {
		out = append(out, convert(v))
	}
	return out
}

func newStepJSON(s probe.Step) stepJSON {
	return stepJSON{
		Hop:             s.Hop,
		Method:          string(s.Method),
		Mailbox:         s.Mailbox,
		Host:            s.Host,
		Port:            s.Port,
		Address:         s.Address,
		URL:             s.URL,
		Name:            string(s.Name),
		OK:              s.OK,
		ErrorClass:      string(s.ErrorClass),
		Detail:          s.Detail,
		StartSeconds:    s.Start.Seconds(),
		DurationSeconds: s.Duration.Seconds(),
	}
}

func newCertificateJSON(c probe.CertInfo, now time.Time) certificateJSON {
	out := certificateJSON{
		Host:       c.Host,
		Address:    c.Address,
		Subject:    c.Subject,
		Issuer:     c.Issuer,
		DNSNames:   append([]string{}, c.DNSNames...),
		NotBefore:  rfc3339(c.NotBefore),
		NotAfter:   rfc3339(c.NotAfter),
		DaysLeft:   math.Round(c.NotAfter.Sub(now).Hours()/24*10) / 10,
		NameOK:     c.NameOK,
		TrustOK:    c.TrustOK,
		ValidityOK: c.ValidityOK,
	}
	if !c.ChainNotAfter.IsZero() {
		t := rfc3339(c.ChainNotAfter)
		out.ChainNotAfter = &t
	}
	return out
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func newAddressCheckJSON(a probe.AddressCheck, now time.Time) addressCheckJSON {
	out := addressCheckJSON{Host: a.Host, Address: a.Address, Steps: convertAll(a.Steps, newStepJSON)}
	if a.Cert != nil {
		c := newCertificateJSON(*a.Cert, now)
		out.Cert = &c
	}
	return out
}

func newResponseJSON(r *probe.Response) *responseJSON {
	ews, source := r.EWSURLFrom()
	out := &responseJSON{
		Schema:       string(r.Schema),
		Action:       r.Action,
		RedirectAddr: r.RedirectAddr,
		RedirectURL:  r.RedirectURL,
		User: userJSON{
			DisplayName:             r.User.DisplayName,
			LegacyDN:                r.User.LegacyDN,
			AutoDiscoverSMTPAddress: r.User.AutoDiscoverSMTPAddress,
			DeploymentID:            r.User.DeploymentID,
			EMailAddress:            r.User.EMailAddress,
		},
		MicrosoftOnline: r.MicrosoftOnline,
		Server:          r.Server(),
		EWSURL:          ews,
		EWSURLSource:    source,
		Protocols:       convertAll(r.Protocols, newProtocolJSON),
		MobileServers: convertAll(r.MobileServers, func(m probe.MobileServer) mobileServerJSON {
			return mobileServerJSON{Type: m.Type, URL: m.URL, Name: m.Name}
		}),
	}
	if e := r.Error; e != nil {
		out.Error = &responseErrorJSON{Code: e.Code, Message: e.Message, DebugData: e.DebugData, ID: e.ID, Time: e.Time}
	}
	return out
}

func newProtocolJSON(p probe.Protocol) protocolJSON {
	return protocolJSON{
		Type:                   p.Type,
		Version:                p.Version,
		Server:                 p.Server,
		ServerVersion:          p.ServerVersion,
		AuthPackage:            p.AuthPackage,
		ASURL:                  p.ASUrl,
		EWSURL:                 p.EwsUrl,
		OOFURL:                 p.OOFUrl,
		OABURL:                 p.OABUrl,
		UMURL:                  p.UMUrl,
		ECPURL:                 p.EcpUrl,
		OWAURL:                 p.OWAUrl,
		MailStoreInternalURL:   p.MailStoreInternalURL,
		MailStoreExternalURL:   p.MailStoreExternalURL,
		AddressBookInternalURL: p.AddressBookInternalURL,
		AddressBookExternalURL: p.AddressBookExternalURL,
		Port:                   p.Port,
		Encryption:             p.Encryption,
		LoginName:              p.LoginName,
		Internal:               newWebScopeJSON(p.Internal),
		External:               newWebScopeJSON(p.External),
	}
}

func newWebScopeJSON(s *probe.WebScope) *webScopeJSON {
	if s == nil {
		return nil
	}
	return &webScopeJSON{OWAURL: s.OWAUrl, Protocols: convertAll(s.Protocols, newProtocolJSON)}
}

func newV2JSON(v probe.V2Result) v2JSON {
	return v2JSON{Protocol: v.Protocol, OK: v.OK, URL: v.URL, Host: v.Host, ErrorCode: v.ErrorCode, ErrorMessage: v.ErrorMessage, Redirects: v.Redirects}
}

func newExpectationJSON(e probe.ExpectationResult) expectationJSON {
	return expectationJSON{Name: e.Name, OK: e.OK, Detail: e.Detail}
}
