package probe

import (
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/oauth2"
)

// Login runs the device authorization grant (RFC 8628) once for a module
// with the refresh-token grant, as a person does in a terminal: it shows
// the verification URL and the code on w, polls the token endpoint as
// often as it asks (slower after slow_down), and writes the refresh token
// it gets to the module's refresh token file (atomically, mode 0600). An
// interrupted, expired or denied login leaves the file as it was.
func (p *Prober) Login(ctx context.Context, w io.Writer) error {
	a := p.s.Auth
	switch {
	case a.Type != AuthOAuth2 || a.Grant != GrantRefreshToken:
		return errors.New("login is for modules with auth type oauth2 and grant refresh_token")
	case a.DeviceAuthURL == "" || a.RefreshTokenFile == "":
		return errors.New("the module has no device_authorization_url or refresh_token_file")
	}
	scopes := a.Scopes
	if len(scopes) == 0 {
		scopes = DefaultDelegatedScopes
	}
	conf := oauth2.Config{
		ClientID: a.ClientID,
		Endpoint: oauth2.Endpoint{TokenURL: a.TokenURL, DeviceAuthURL: a.DeviceAuthURL, AuthStyle: oauth2.AuthStyleInParams},
		Scopes:   scopes,
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.sideClient())
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		return fmt.Errorf("asking %s for a device code: %s", a.DeviceAuthURL, tokenError(err))
	}
	fmt.Fprintf(w, "To sign in, open %s in a browser and enter the code %s\n", Printable(da.VerificationURI, maxFieldBytes), Printable(da.UserCode, 64))
	fmt.Fprintf(w, "Waiting for the sign-in (the code expires at %s)…\n", da.Expiry.Format("15:04:05"))
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		return loginError(err)
	}
	if tok.RefreshToken == "" {
		return errors.New("the token endpoint issued no refresh token: the scope must include offline_access, and the app must allow it")
	}
	if err := p.tokens.Save(a.RefreshTokenFile, tok.RefreshToken); err != nil {
		return fmt.Errorf("writing the refresh token file: %w", err)
	}
	fmt.Fprintf(w, "Signed in. The refresh token is in %s; a running exporter uses it from its next probe of the module (a credential back-off of the old token ends).\n", a.RefreshTokenFile)
	return nil
}

// loginError says what a failed device-code poll means for a person.
func loginError(err error) error {
	var re *oauth2.RetrieveError
	switch {
	case errors.Is(err, context.Canceled):
		return errors.New("login interrupted; the refresh token file was left as it was")
	case errors.Is(err, context.DeadlineExceeded):
		return errors.New("the code expired before anyone signed in; run login again")
	case errors.As(err, &re) && re.ErrorCode == "expired_token":
		return errors.New("the code expired before anyone signed in; run login again")
	case errors.As(err, &re) && re.ErrorCode == "access_denied":
		return errors.New("the sign-in was declined")
	}
	return fmt.Errorf("the token endpoint refused the login: %s", tokenError(err))
}
