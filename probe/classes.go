package probe

import "fmt"

// ErrorClass says in one fixed token why a step failed. The vocabulary is
// closed (ErrorClasses lists it) so that a class can serve as a metric
// label value and an alert can match on it; the human-readable part of a
// failure is the step's Detail.
type ErrorClass string

// DNS.
const (
	ClassNXDomain    ErrorClass = "nxdomain"      // the name does not exist
	ClassNoRecords   ErrorClass = "no_records"    // the name exists but has no record of the type asked
	ClassServFail    ErrorClass = "servfail"      // the resolver answered with another error code
	ClassDNSError    ErrorClass = "dns_error"     // the query failed, or a CNAME chain is too long
	ClassNoUsableSRV ErrorClass = "no_usable_srv" // SRV records exist, but none on port 443
)

// Connections.
const (
	ClassTimeout          ErrorClass = "timeout"            // no answer within the step timeout or the deadline
	ClassRefused          ErrorClass = "refused"            // TCP connection refused
	ClassUnreachable      ErrorClass = "unreachable"        // no route to the address
	ClassTCPError         ErrorClass = "tcp_error"          // any other TCP failure
	ClassConnectionError  ErrorClass = "connection_error"   // the connection broke during an HTTP exchange
	ClassResponseTooLarge ErrorClass = "response_too_large" // the answer passed max_body_bytes
	ClassBudgetExhausted  ErrorClass = "budget_exhausted"   // the probe spent its connection attempts or DNS queries
)

// TLS and certificates.
const (
	ClassHandshakeFailed     ErrorClass = "handshake_failed"      // no TLS session came about
	ClassNameMismatch        ErrorClass = "name_mismatch"         // the certificate does not name the host
	ClassUntrusted           ErrorClass = "untrusted"             // no chain to a trusted root
	ClassExpired             ErrorClass = "expired"               // a certificate is past NotAfter
	ClassNotYetValid         ErrorClass = "not_yet_valid"         // the leaf is before NotBefore
	ClassClientCertRequested ErrorClass = "client_cert_requested" // the server asked for a client certificate
	ClassClientCertRequired  ErrorClass = "client_cert_required"  // the server refused to go on without one
)

// HTTP answers.
const (
	ClassUnauthorized ErrorClass = "unauthorized"  // 401 with no credentials accepted
	ClassForbidden    ErrorClass = "forbidden"     // 403
	ClassNotFound     ErrorClass = "not_found"     // 404 or 405: no Autodiscover here
	ClassThrottled    ErrorClass = "throttled"     // 429
	ClassAccountState ErrorClass = "account_state" // Exchange Online's 456 (e.g. MFA or an app password needed)
	ClassServerError  ErrorClass = "server_error"  // 5xx
	ClassHTTPStatus   ErrorClass = "http_status"   // any other unusable status
	ClassNoRedirect   ErrorClass = "no_redirect"   // the HTTP redirect method got no redirect
)

// Credentials.
const (
	ClassNoCredentials       ErrorClass = "no_credentials"       // a 401 and the module has none
	ClassBearerRequired      ErrorClass = "bearer_required"      // OAuth wanted and the module cannot answer it
	ClassWithheldPlainHTTP   ErrorClass = "withheld_plain_http"  // never over plain HTTP
	ClassWithheldCertificate ErrorClass = "withheld_certificate" // never to a host whose certificate failed
	ClassWithheldDomain      ErrorClass = "withheld_domain"      // never outside the paired domains
	ClassUnsupportedScheme   ErrorClass = "unsupported_scheme"   // no offered scheme is one the module may use
	ClassAuthBackoff         ErrorClass = "auth_backoff"         // withheld after an earlier refusal (lockout protection)
	ClassAuthFailed          ErrorClass = "auth_failed"          // the server refused the credentials
	ClassAuthError           ErrorClass = "auth_error"           // the credentials could not be produced (token endpoint, NTLM)
)

// Answers.
const (
	ClassBadContentType    ErrorClass = "bad_content_type"   // not an XML media type
	ClassEmptyBody         ErrorClass = "empty_body"         // nothing but white space
	ClassBadXML            ErrorClass = "bad_xml"            // not well-formed, bad charset, too deep, too many tokens, DTD
	ClassNotAutodiscover   ErrorClass = "not_autodiscover"   // well-formed XML of some other kind
	ClassNoAction          ErrorClass = "no_action"          // a Response with neither an Action nor an Error
	ClassBadAction         ErrorClass = "bad_action"         // unknown Action, or a redirect without its target
	ClassNoSettings        ErrorClass = "no_settings"        // Action settings that names no server or URL
	ClassBadPayload        ErrorClass = "bad_payload"        // a v2 answer that is no usable JSON
	ClassAutodiscoverError ErrorClass = "autodiscover_error" // the server answered with an Autodiscover Error
	ClassV2Error           ErrorClass = "v2_error"           // Autodiscover v2 answered with an ErrorCode
	ClassV2UnknownAddress  ErrorClass = "v2_unknown_address" // Exchange Online sent the client back to the mailbox's own domain, which did not answer
)

// Redirects and input.
const (
	ClassBadRedirect      ErrorClass = "bad_redirect"       // a redirect target the rules refuse
	ClassLoop             ErrorClass = "loop"               // a URL or address seen before in this run
	ClassTooManyRedirects ErrorClass = "too_many_redirects" // over the hop budget
	ClassBadAddress       ErrorClass = "bad_address"        // a mailbox address that is refused before any traffic
)

// Endpoints the answer returned.
const (
	ClassBadURL        ErrorClass = "bad_url"        // an endpoint URL the rules refuse: not https, user info, an IP literal, a port not allowed
	ClassEndpointError ErrorClass = "endpoint_error" // the protocol answered with an error of its own (EWS ResponseCode, MAPI/HTTP X-ResponseCode)
	ClassNotProtocol   ErrorClass = "not_protocol"   // the answer does not have the protocol's shape (no SOAP envelope, no OAB XML, no MS-ASProtocolVersions)
)

// SOAP Autodiscover (autodiscover.svc).
const (
	ClassSOAPFault      ErrorClass = "soap_fault"      // a SOAP fault instead of an answer
	ClassInvalidUser    ErrorClass = "invalid_user"    // ErrorCode InvalidUser: no mailbox for the address here
	ClassInvalidRequest ErrorClass = "invalid_request" // ErrorCode InvalidRequest (or InvalidSetting for the request)
	ClassServerBusy     ErrorClass = "server_busy"     // ErrorCode ServerBusy: Exchange is throttling
	ClassNotFederated   ErrorClass = "not_federated"   // ErrorCode NotFederated: the domain has no federation trust
	ClassSOAPError      ErrorClass = "soap_error"      // any other ErrorCode (InvalidDomain, InternalServerError, …)
)

// The directory (method scp) and Kerberos.
const (
	ClassLDAPError        ErrorClass = "ldap_error"        // the directory answered an LDAP operation with an error, or broke the protocol
	ClassLDAPBindFailed   ErrorClass = "ldap_bind_failed"  // the directory refused the bind (invalidCredentials)
	ClassNoSCP            ErrorClass = "no_scp"            // the directory holds no Autodiscover SCP the probe may use
	ClassBadSCP           ErrorClass = "bad_scp"           // an SCP's serviceBindingInformation is no usable URL
	ClassTooManyRecords   ErrorClass = "too_many_records"  // the directory returned more SCPs than the probe reads
	ClassKDCUnreachable   ErrorClass = "kdc_unreachable"   // no KDC of the realm answered
	ClassPrincipalUnknown ErrorClass = "principal_unknown" // the KDC knows no such user, or no such service principal (SPN)
	ClassPreauthFailed    ErrorClass = "preauth_failed"    // the KDC refused the password or key: a wrong password
	ClassClockSkew        ErrorClass = "clock_skew"        // the KDC and the exporter disagree on the time by more than the realm allows
	ClassNotKerberos      ErrorClass = "not_kerberos"      // the server answered the Kerberos token with something else (an NTLM challenge)
)

// Verdicts without a step.
const (
	ClassExpectationNotMet ErrorClass = "expectation_not_met" // every step passed, an expectation did not
)

// ErrorClasses is the whole vocabulary, in the order of the groups above.
var ErrorClasses = []ErrorClass{
	ClassNXDomain, ClassNoRecords, ClassServFail, ClassDNSError, ClassNoUsableSRV,
	ClassTimeout, ClassRefused, ClassUnreachable, ClassTCPError, ClassConnectionError, ClassResponseTooLarge, ClassBudgetExhausted,
	ClassHandshakeFailed, ClassNameMismatch, ClassUntrusted, ClassExpired, ClassNotYetValid, ClassClientCertRequested, ClassClientCertRequired,
	ClassUnauthorized, ClassForbidden, ClassNotFound, ClassThrottled, ClassAccountState, ClassServerError, ClassHTTPStatus, ClassNoRedirect,
	ClassNoCredentials, ClassBearerRequired, ClassWithheldPlainHTTP, ClassWithheldCertificate, ClassWithheldDomain, ClassUnsupportedScheme, ClassAuthBackoff, ClassAuthFailed, ClassAuthError,
	ClassBadContentType, ClassEmptyBody, ClassBadXML, ClassNotAutodiscover, ClassNoAction, ClassBadAction, ClassNoSettings, ClassBadPayload, ClassAutodiscoverError, ClassV2Error, ClassV2UnknownAddress,
	ClassBadRedirect, ClassLoop, ClassTooManyRedirects, ClassBadAddress,
	ClassBadURL, ClassEndpointError, ClassNotProtocol,
	ClassSOAPFault, ClassInvalidUser, ClassInvalidRequest, ClassServerBusy, ClassNotFederated, ClassSOAPError,
	ClassLDAPError, ClassLDAPBindFailed, ClassNoSCP, ClassBadSCP, ClassTooManyRecords, ClassKDCUnreachable, ClassPrincipalUnknown, ClassPreauthFailed, ClassClockSkew, ClassNotKerberos,
	ClassExpectationNotMet,
}

// Error is every failure the probe reports: a failed step, an answer that
// does not parse, an address refused before any traffic. Detail is a
// whole sentence for people and never holds a secret.
type Error struct {
	Class  ErrorClass
	Detail string
}

func (e *Error) Error() string { return e.Detail }

func failf(class ErrorClass, format string, args ...any) *Error {
	return &Error{Class: class, Detail: fmt.Sprintf(format, args...)}
}
