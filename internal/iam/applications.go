package iam

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// Application is the wire shape of an application: the OAuth client a
// project's users log in through. Its secret is never part of it.
type Application struct {
	ID                     string   `json:"id"`
	Name                   string   `json:"name"`
	ClientID               string   `json:"clientId"`
	Description            string   `json:"description,omitempty"`
	LoginRedirectURI       string   `json:"loginRedirectUri,omitempty"`
	LogoURI                string   `json:"logoUri,omitempty"`
	AllowedCallbackURLs    []string `json:"allowedCallbackUrls"`
	AllowedLogoutURLs      []string `json:"allowedLogoutUrls"`
	AllowedWebOriginsURLs  []string `json:"allowedWebOriginsUrls"`
	AllowedCORSOriginsURLs []string `json:"allowedCORSOriginsUrls"`
	RefreshTokenEnabled    bool     `json:"refreshTokenEnabled"`
	MFAEnabled             bool     `json:"mfaEnabled"`
	PasswordlessSMS        bool     `json:"passwordlessSMS"`
	LoginWithEmailEnabled  bool     `json:"loginWithEmailEnabled"`
	ShouldSendInviteEmail  bool     `json:"shouldSendInviteEmail"`
	// Confidential is true once a secret has been issued (rotate-secret):
	// the client must then authenticate with it at the token endpoint.
	// Until then it is a public client (PKCE only).
	Confidential bool `json:"-"`
}

// AllowsRedirect reports whether uri is one of the application's allowed
// callback URLs, compared as exact strings (no normalisation, no prefixes).
func (a Application) AllowsRedirect(uri string) bool {
	for _, u := range a.AllowedCallbackURLs {
		if u == uri {
			return true
		}
	}
	return false
}

// ApplicationInput creates or (nil fields left alone) updates an application.
type ApplicationInput struct {
	Name                   *string   `json:"name"`
	Description            *string   `json:"description"`
	LoginRedirectURI       *string   `json:"loginRedirectUri"`
	LogoURI                *string   `json:"logoUri"`
	AllowedCallbackURLs    *[]string `json:"allowedCallbackUrls"`
	AllowedLogoutURLs      *[]string `json:"allowedLogoutUrls"`
	AllowedWebOriginsURLs  *[]string `json:"allowedWebOriginsUrls"`
	AllowedCORSOriginsURLs *[]string `json:"allowedCORSOriginsUrls"`
	RefreshTokenEnabled    *bool     `json:"refreshTokenEnabled"`
	MFAEnabled             *bool     `json:"mfaEnabled"`
	PasswordlessSMS        *bool     `json:"passwordlessSMS"`
	LoginWithEmailEnabled  *bool     `json:"loginWithEmailEnabled"`
	ShouldSendInviteEmail  *bool     `json:"shouldSendInviteEmail"`
}

func applicationOut(a store.Application) Application {
	nonNil := func(l []string) []string {
		if l == nil {
			return []string{}
		}
		return l
	}
	return Application{ID: a.ID, Name: a.Name, ClientID: a.ClientID, Description: a.Description, LoginRedirectURI: a.LoginRedirectURI,
		LogoURI: a.LogoURI, AllowedCallbackURLs: nonNil(a.AllowedCallbackURLs), AllowedLogoutURLs: nonNil(a.AllowedLogoutURLs),
		AllowedWebOriginsURLs: nonNil(a.AllowedWebOrigins), AllowedCORSOriginsURLs: nonNil(a.AllowedCORSOrigins),
		RefreshTokenEnabled: a.RefreshTokenEnabled, MFAEnabled: a.MFAEnabled, PasswordlessSMS: a.PasswordlessSMS,
		LoginWithEmailEnabled: a.LoginWithEmailEnabled, ShouldSendInviteEmail: a.ShouldSendInviteEmail, Confidential: a.SecretHash != ""}
}

// Limits on application settings.
const (
	maxAppURLs   = 100
	maxURLLength = 2048
)

// isLoopback reports whether host names this machine: the only hosts a
// plain-http redirect may go to (RFC 8252 section 7.3).
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseAppURL checks the parts every application URL shares: absolute
// https (http only for loopback hosts), a host, no user info, no fragment.
func parseAppURL(field, raw string) (*url.URL, error) {
	bad := func(why string) error { return fault.Invalid("%s: %q %s", field, raw, why) }
	if raw == "" || len(raw) > maxURLLength {
		return nil, bad("must be a URL of at most 2048 characters")
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return nil, bad("must not contain spaces")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return nil, bad("must be an absolute http(s) URL")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, bad("must use https (http is allowed only for localhost and loopback addresses)")
		}
	default:
		return nil, bad("must be an absolute http(s) URL")
	}
	if u.User != nil {
		return nil, bad("must not contain user info")
	}
	if strings.Contains(raw, "#") {
		return nil, bad("must not contain a fragment")
	}
	return u, nil
}

// checkRedirectURLs validates callback and logout URLs.
func checkRedirectURLs(field string, l []string) ([]string, error) {
	if len(l) > maxAppURLs {
		return nil, fault.Invalid("%s: at most %d URLs", field, maxAppURLs)
	}
	for _, raw := range l {
		if _, err := parseAppURL(field, raw); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// checkOrigins validates origin lists: scheme and host only, where the host
// may start with "*." for any subdomain.
func checkOrigins(field string, l []string) ([]string, error) {
	if len(l) > maxAppURLs {
		return nil, fault.Invalid("%s: at most %d origins", field, maxAppURLs)
	}
	for _, raw := range l {
		u, err := parseAppURL(field, raw)
		if err != nil {
			return nil, err
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || strings.Contains(raw, "?") {
			return nil, fault.Invalid("%s: %q must be an origin (scheme and host) without a path or query", field, raw)
		}
		if h := strings.TrimPrefix(u.Hostname(), "*."); strings.Contains(h, "*") || h == "" {
			return nil, fault.Invalid("%s: %q may use * only as the first label (https://*.example.com)", field, raw)
		}
	}
	return l, nil
}

// applyApplication copies the set fields of in onto a, validating each.
func applyApplication(a *store.Application, in ApplicationInput, mfa bool) error {
	if in.MFAEnabled != nil && *in.MFAEnabled && !mfa {
		// Accepting it without enforcing it would be a silent security gap.
		return fault.NotSupported("mfaEnabled: multi-factor sign-in needs the server's secrets key, which this server was not given")
	}
	var err error
	if in.Name != nil {
		if a.Name, err = validName(in.Name, "application"); err != nil {
			return err
		}
	}
	if in.Description != nil {
		a.Description = *in.Description
	}
	if in.LoginRedirectURI != nil {
		a.LoginRedirectURI = *in.LoginRedirectURI
		if a.LoginRedirectURI != "" {
			if _, err := parseAppURL("loginRedirectUri", a.LoginRedirectURI); err != nil {
				return err
			}
		}
	}
	if in.LogoURI != nil {
		a.LogoURI = *in.LogoURI
		if u, err := url.Parse(a.LogoURI); a.LogoURI != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(a.LogoURI) > maxURLLength) {
			return fault.Invalid("logoUri must be an absolute http(s) URL")
		}
	}
	lists := []struct {
		in    *[]string
		field string
		check func(string, []string) ([]string, error)
		dst   *[]string
	}{
		{in.AllowedCallbackURLs, "allowedCallbackUrls", checkRedirectURLs, &a.AllowedCallbackURLs},
		{in.AllowedLogoutURLs, "allowedLogoutUrls", checkRedirectURLs, &a.AllowedLogoutURLs},
		{in.AllowedWebOriginsURLs, "allowedWebOriginsUrls", checkOrigins, &a.AllowedWebOrigins},
		{in.AllowedCORSOriginsURLs, "allowedCORSOriginsUrls", checkOrigins, &a.AllowedCORSOrigins},
	}
	for _, l := range lists {
		if l.in == nil {
			continue
		}
		if *l.dst, err = l.check(l.field, *l.in); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		in  *bool
		dst *bool
	}{{in.RefreshTokenEnabled, &a.RefreshTokenEnabled}, {in.MFAEnabled, &a.MFAEnabled}, {in.PasswordlessSMS, &a.PasswordlessSMS},
		{in.LoginWithEmailEnabled, &a.LoginWithEmailEnabled}, {in.ShouldSendInviteEmail, &a.ShouldSendInviteEmail}} {
		if f.in != nil {
			*f.dst = *f.in
		}
	}
	return nil
}

// CreateApplication adds a public application (no secret until
// RotateApplicationSecret). Errors: Invalid (name, URLs), NotSupported (mfaEnabled without a secrets key).
func (s *Service) CreateApplication(ctx context.Context, projectID string, in ApplicationInput) (Application, error) {
	if in.AllowedCallbackURLs == nil {
		return Application{}, fault.Invalid("allowedCallbackUrls is required (it may be an empty array)")
	}
	if _, err := validName(in.Name, "application"); err != nil {
		return Application{}, err
	}
	a := store.Application{ProjectID: projectID, ID: newID(), ClientID: newClientID(), LoginWithEmailEnabled: true, CreatedAt: s.now()}
	if err := applyApplication(&a, in, s.sealer != nil); err != nil {
		return Application{}, err
	}
	if err := s.write(ctx, projectID, func(tx *store.Tx) error { return tx.CreateApplication(ctx, a) }); err != nil {
		return Application{}, storeErr(err, "application")
	}
	return applicationOut(a), nil
}

// GetApplication returns one application. Errors: NotFound.
func (s *Service) GetApplication(ctx context.Context, projectID, id string) (Application, error) {
	a, err := s.store.GetApplication(ctx, projectID, id)
	if err != nil {
		return Application{}, storeErr(err, "application "+id)
	}
	return applicationOut(a), nil
}

// ListApplications returns the project's applications.
func (s *Service) ListApplications(ctx context.Context, projectID string) ([]Application, error) {
	apps, err := s.store.ListApplications(ctx, projectID)
	if err != nil {
		return nil, err
	}
	out := make([]Application, 0, len(apps))
	for _, a := range apps {
		out = append(out, applicationOut(a))
	}
	return out, nil
}

// UpdateApplication changes the fields set in in. Errors: NotFound, Invalid.
func (s *Service) UpdateApplication(ctx context.Context, projectID, id string, in ApplicationInput) (Application, error) {
	var out Application
	err := s.write(ctx, projectID, func(tx *store.Tx) error {
		a, err := tx.GetApplication(ctx, projectID, id)
		if err != nil {
			return storeErr(err, "application "+id)
		}
		if err := applyApplication(&a, in, s.sealer != nil); err != nil {
			return err
		}
		if err := tx.UpdateApplication(ctx, a); err != nil {
			return storeErr(err, "application "+id)
		}
		out = applicationOut(a)
		return nil
	})
	return out, err
}

// DeleteApplication removes an application; its users stay in the project.
// Errors: NotFound.
func (s *Service) DeleteApplication(ctx context.Context, projectID, id string) error {
	if err := s.write(ctx, projectID, func(tx *store.Tx) error { return tx.DeleteApplication(ctx, projectID, id) }); err != nil {
		return storeErr(err, "application "+id)
	}
	return nil
}

// RotateApplicationSecret issues a new secret (the only time it is shown)
// and makes the application a confidential client; an older secret stops
// working. Errors: NotFound.
func (s *Service) RotateApplicationSecret(ctx context.Context, projectID, id string) (string, error) {
	secret, err := auth.NewSecret()
	if err != nil {
		return "", err
	}
	if err := s.write(ctx, projectID, func(tx *store.Tx) error { return tx.SetApplicationSecret(ctx, projectID, id, auth.HashSecret(secret)) }); err != nil {
		return "", storeErr(err, "application "+id)
	}
	return secret, nil
}

// ApplicationByClientID finds an application by its OAuth client id (unique
// across projects) and returns it with its project. Errors: NotFound.
func (s *Service) ApplicationByClientID(ctx context.Context, clientID string) (Application, string, error) {
	if clientID == "" {
		return Application{}, "", fault.NotFound("application not found")
	}
	a, err := s.store.GetApplicationByClientID(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return Application{}, "", fault.NotFound("application not found")
	}
	if err != nil {
		return Application{}, "", err
	}
	return applicationOut(a), a.ProjectID, nil
}

// CORSOrigins lists, per project, the origins its applications allow
// (allowedCORSOriginsUrls), for the server's CORS check.
func (s *Service) CORSOrigins(ctx context.Context) ([]store.ProjectOrigins, error) {
	return s.store.CORSOrigins(ctx)
}

// unknownClientHash stands in for the secret hash of a client that does not
// exist, so every failure does the same work.
var unknownClientHash = auth.HashSecret("no such client")

// AuthenticateApplication checks a confidential application's client
// credentials. Errors: Unauthorized, with one message for an unknown client,
// a public client (no secret issued) and a wrong secret.
func (s *Service) AuthenticateApplication(ctx context.Context, clientID, secret string) (Application, string, error) {
	bad := fault.Unauthorized("invalid client credentials")
	if clientID == "" || secret == "" {
		return Application{}, "", bad
	}
	a, err := s.store.GetApplicationByClientID(ctx, clientID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Application{}, "", err
	}
	hash := a.SecretHash
	if err != nil || hash == "" {
		hash = unknownClientHash
	}
	if !auth.SecretMatches(secret, hash) || err != nil || a.SecretHash == "" {
		return Application{}, "", bad
	}
	return applicationOut(a), a.ProjectID, nil
}
