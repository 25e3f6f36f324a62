package iam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// User is the wire shape of a project user.
type User struct {
	ID                   string          `json:"id"`
	Name                 string          `json:"name"`
	Email                *string         `json:"email"`
	PhoneNumber          *string         `json:"phoneNumber"`
	AuthenticationMethod string          `json:"authenticationMethod"`
	AccessPolicy         json.RawMessage `json:"accessPolicy,omitempty"`
	Profile              string          `json:"profile"`
	Roles                []RoleStub      `json:"roles"`
	Warnings             []string        `json:"warnings,omitempty"`
}

// UserInvitation is the answer to an invite: the only time the link is shown.
type UserInvitation struct {
	User
	InvitationURL string `json:"invitationUrl"`
}

// UserInvite is the body of POST /user/invite. Either Profile names an
// existing FHIR resource, or Resource (a Patient or Practitioner) is
// created through the ProfileWriter and becomes the profile.
type UserInvite struct {
	ApplicationID string          `json:"applicationId"`
	Email         *string         `json:"email"`
	PhoneNumber   *string         `json:"phoneNumber"`
	Username      *string         `json:"username"`
	Resource      json.RawMessage `json:"resource"`
	Roles         *[]string       `json:"roles"`
	AccessPolicy  json.RawMessage `json:"accessPolicy"`
	Profile       *string         `json:"profile"`
}

// UserUpdate is the body of PATCH /user/{id}; nil fields are left alone and
// an accessPolicy of null removes the inline policy.
type UserUpdate struct {
	AccessPolicy json.RawMessage `json:"accessPolicy"`
	Roles        *[]string       `json:"roles"`
	Profile      *string         `json:"profile"`
	Email        *string         `json:"email"`
}

// ProfileWriter creates a user's FHIR profile resource (a Patient or
// Practitioner, as JSON) in the project and returns its reference,
// "Patient/<id>". The FHIR side implements it (given in Deps); iam never
// imports it.
type ProfileWriter interface {
	CreateProfile(ctx context.Context, projectID string, resource json.RawMessage) (ref string, err error)
}

// Authentication methods.
const (
	AuthMethodEmail = "email"
	AuthMethodSMS   = "sms"
)

func userOut(u store.User, roles []RoleStub) User {
	if roles == nil {
		roles = []RoleStub{}
	}
	out := User{ID: u.ID, Name: u.Name, AuthenticationMethod: u.AuthMethod, AccessPolicy: u.AccessPolicy, Profile: u.Profile, Roles: roles}
	if u.Email != "" {
		out.Email = &u.Email
	}
	if u.PhoneNumber != "" {
		out.PhoneNumber = &u.PhoneNumber
	}
	return out
}

var (
	// profileRef is a FHIR reference a user profile may be.
	profileRef = regexp.MustCompile(`^(Patient|Practitioner|RelatedPerson|Device)/[A-Za-z0-9\-.]{1,64}$`)
	// e164 is an international phone number.
	e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

func checkProfileRef(ref string) error {
	if !profileRef.MatchString(ref) {
		return fault.Invalid("profile must be a FHIR reference such as Patient/<id> (Patient, Practitioner, RelatedPerson or Device)")
	}
	return nil
}

// normalEmail checks an email address and returns it lower-cased.
func normalEmail(email string) (string, error) {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || len(email) > 254 {
		return "", fault.Invalid("email must be a plain email address")
	}
	return strings.ToLower(email), nil
}

// profileResource checks a profile resource (a JSON object of one of the
// types) and returns its type and a display name from its first name.
func profileResource(raw json.RawMessage, types ...string) (string, string, error) {
	want := strings.Join(types, " or ")
	var r struct {
		ResourceType string `json:"resourceType"`
		Name         []struct {
			Text   string   `json:"text"`
			Given  []string `json:"given"`
			Family string   `json:"family"`
		} `json:"name"`
	}
	if len(raw) == 0 || string(raw) == "null" {
		return "", "", fault.Invalid("resource is required: a FHIR %s resource", want)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return "", "", fault.Invalid("resource must be a FHIR %s resource: %s", want, jsonShape(err))
	}
	ok := false
	for _, t := range types {
		ok = ok || r.ResourceType == t
	}
	if !ok {
		return "", "", fault.Invalid("resource.resourceType must be %s", want)
	}
	if len(r.Name) == 0 {
		return r.ResourceType, "", nil
	}
	if r.Name[0].Text != "" {
		return r.ResourceType, r.Name[0].Text, nil
	}
	return r.ResourceType, strings.TrimSpace(strings.Join(append(r.Name[0].Given, r.Name[0].Family), " ")), nil
}

// jsonShape describes a decoding error without echoing input.
func jsonShape(err error) string {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Field != "" {
		return fmt.Sprintf("field %q has the wrong type", typ.Field)
	}
	return "not a JSON object of that shape"
}

// userInvitationBase is where user invitation links start: the developer
// invitation base with /invite/ replaced by /user-invite/.
func (s *Service) userInvitationBase() string {
	if root, ok := strings.CutSuffix(s.invitationBase, "/invite/"); ok {
		return root + "/user-invite/"
	}
	return s.invitationBase + "user/"
}

// newUser is a user to insert with its roles and, when u.Profile is
// empty, the resource to create as its profile.
type newUser struct {
	u        store.User
	roles    []string
	resource json.RawMessage
}

// insertUser stores a new user with its roles, then creates its profile
// resource if it has none yet (outside the transaction: the FHIR side has
// its own); if that fails the user is removed again, so neither a user
// without a profile nor, on a taken email, an orphan resource remains.
func (s *Service) insertUser(ctx context.Context, nu newUser) (User, error) {
	var writer ProfileWriter
	if nu.u.Profile == "" {
		if writer = s.acct.profiles; writer == nil {
			return User{}, fault.NotSupported("creating FHIR profile resources for users is not available on this server: pass profile, a reference to an existing Patient or Practitioner")
		}
	}
	var stubs []RoleStub
	err := s.store.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		if stubs, err = checkRoles(ctx, &tx.Store, nu.u.ProjectID, nu.roles); err != nil {
			return err
		}
		if err := tx.CreateUser(ctx, nu.u); err != nil {
			return storeErr(err, "a user with this email or phone number")
		}
		return tx.SetRoles(ctx, nu.u.ProjectID, holderOf(auth.KindUser, nu.u.ID), nu.roles)
	})
	if err != nil {
		return User{}, err
	}
	if writer != nil {
		ref, err := writer.CreateProfile(ctx, nu.u.ProjectID, nu.resource)
		if err == nil && (checkProfileRef(ref) != nil || !strings.HasPrefix(ref, resourceType(nu.resource)+"/")) {
			err = fmt.Errorf("profile writer returned %q for a %s", ref, resourceType(nu.resource))
		}
		if err == nil {
			nu.u.Profile = ref
			err = s.store.UpdateUser(ctx, nu.u)
		}
		if err != nil {
			if derr := s.store.DeleteUser(context.WithoutCancel(ctx), nu.u.ProjectID, nu.u.ID); derr != nil {
				s.log.WarnContext(ctx, "remove user whose profile failed", "err", derr, "project", nu.u.ProjectID, "user", nu.u.ID)
			}
			return User{}, err
		}
	}
	s.changed(ctx, nu.u.ProjectID)
	return userOut(nu.u, stubs), nil
}

func resourceType(raw json.RawMessage) string {
	var r struct {
		ResourceType string `json:"resourceType"`
	}
	_ = json.Unmarshal(raw, &r)
	return r.ResourceType
}

// InviteUser adds a user to the project and returns it with a one-time
// invitation link (its hash is stored; the link itself is never stored).
// Errors: Invalid (fields, unknown application or role), Conflict (email
// or phone number taken), NotSupported (a resource but no ProfileWriter).
func (s *Service) InviteUser(ctx context.Context, projectID string, in UserInvite) (UserInvitation, error) {
	u := store.User{ProjectID: projectID, ID: newID(), ApplicationID: in.ApplicationID, CreatedAt: s.now()}
	if in.ApplicationID == "" {
		return UserInvitation{}, fault.Invalid("applicationId is required")
	}
	if _, err := s.store.GetApplication(ctx, projectID, in.ApplicationID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return UserInvitation{}, fault.Invalid("applicationId: application %q does not exist in this project", in.ApplicationID)
		}
		return UserInvitation{}, err
	}
	if in.Email != nil && *in.Email != "" {
		email, err := normalEmail(*in.Email)
		if err != nil {
			return UserInvitation{}, err
		}
		u.Email, u.AuthMethod = email, AuthMethodEmail
	}
	if in.PhoneNumber != nil && *in.PhoneNumber != "" {
		if !e164.MatchString(*in.PhoneNumber) {
			return UserInvitation{}, fault.Invalid("phoneNumber must be in international format, e.g. +15555550123")
		}
		u.PhoneNumber = *in.PhoneNumber
		if u.AuthMethod == "" {
			u.AuthMethod = AuthMethodSMS
		}
	}
	if u.AuthMethod == "" {
		return UserInvitation{}, fault.Invalid("a user needs an email or a phoneNumber")
	}
	pol, warnings, err := parsePolicy(in.AccessPolicy)
	if err != nil {
		return UserInvitation{}, err
	}
	u.AccessPolicy = pol
	var roles []string
	if in.Roles != nil {
		roles = *in.Roles
	}
	if pol == nil && len(roles) == 0 {
		return UserInvitation{}, fault.Invalid("a user needs roles or an accessPolicy")
	}
	var resource json.RawMessage
	var resourceName string
	if in.Profile != nil && *in.Profile != "" {
		if err := checkProfileRef(*in.Profile); err != nil {
			return UserInvitation{}, err
		}
		u.Profile = *in.Profile
		if len(in.Resource) > 0 && string(in.Resource) != "null" {
			_, resourceName, _ = profileResource(in.Resource, "Patient", "Practitioner")
		}
	} else {
		if _, resourceName, err = profileResource(in.Resource, "Patient", "Practitioner"); err != nil {
			return UserInvitation{}, err
		}
		resource = in.Resource
	}
	u.Name = firstNonEmpty(deref(in.Username), resourceName, u.Email, u.PhoneNumber)
	if len(u.Name) > 200 {
		return UserInvitation{}, fault.Invalid("username is longer than 200 characters")
	}
	token, err := auth.NewSecret()
	if err != nil {
		return UserInvitation{}, err
	}
	u.InvitationHash, u.InvitationExpiresAt = auth.HashSecret(token), u.CreatedAt.Add(invitationTTL)
	out, err := s.insertUser(ctx, newUser{u: u, roles: roles, resource: resource})
	if err != nil {
		return UserInvitation{}, err
	}
	out.Warnings = warnings
	return UserInvitation{User: out, InvitationURL: s.userInvitationBase() + token}, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return strings.TrimSpace(*p)
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// GetUser returns a user of the project. Errors: NotFound.
func (s *Service) GetUser(ctx context.Context, projectID, id string) (User, error) {
	u, err := s.store.GetUser(ctx, projectID, id)
	if err != nil {
		return User{}, storeErr(err, "user "+id)
	}
	roles, err := roleStubs(ctx, s.store, projectID, holderOf(auth.KindUser, id))
	if err != nil {
		return User{}, err
	}
	return userOut(u, roles), nil
}

// ListUsers returns the project's users matching f, without roles or
// policies. With f.Limit set, next is the After value of the following
// page ("" on the last page).
func (s *Service) ListUsers(ctx context.Context, projectID string, f store.UserFilter) (users []User, next string, err error) {
	want := f.Limit
	if want > 0 {
		f.Limit++ // one more tells whether there is a next page
	}
	rows, err := s.store.ListUsers(ctx, projectID, f)
	if err != nil {
		return nil, "", err
	}
	if want > 0 && len(rows) > want {
		rows = rows[:want]
		next = store.UserCursor(rows[want-1], f.Sort)
	}
	users = make([]User, 0, len(rows))
	for _, u := range rows {
		o := userOut(u, nil)
		o.Roles, o.AccessPolicy = nil, nil
		users = append(users, o)
	}
	return users, next, nil
}

// UpdateUser changes the inline policy, roles, profile and/or email.
// Errors: NotFound, Invalid, Conflict (email taken).
func (s *Service) UpdateUser(ctx context.Context, projectID, id string, in UserUpdate) (User, error) {
	var warnings []string
	err := s.write(ctx, projectID, func(tx *store.Tx) error {
		u, err := tx.GetUser(ctx, projectID, id)
		if err != nil {
			return storeErr(err, "user "+id)
		}
		if in.Email != nil {
			email, err := normalEmail(*in.Email)
			if err != nil {
				return err
			}
			u.Email = email
			if u.AuthMethod == "" {
				u.AuthMethod = AuthMethodEmail
			}
		}
		if in.Profile != nil {
			if err := checkProfileRef(*in.Profile); err != nil {
				return err
			}
			u.Profile = *in.Profile
		}
		if in.AccessPolicy != nil {
			if u.AccessPolicy, warnings, err = parsePolicy(in.AccessPolicy); err != nil {
				return err
			}
		}
		if in.Roles != nil {
			if _, err := checkRoles(ctx, &tx.Store, projectID, *in.Roles); err != nil {
				return err
			}
			if err := tx.SetRoles(ctx, projectID, holderOf(auth.KindUser, id), *in.Roles); err != nil {
				return err
			}
		}
		return storeErr(tx.UpdateUser(ctx, u), "a user with this email")
	})
	if err != nil {
		return User{}, err
	}
	out, err := s.GetUser(ctx, projectID, id)
	out.Warnings = warnings
	return out, err
}

// DeleteUser removes a user and its role holdings; its tokens stop working
// at once because the principal no longer resolves. Its profile resource
// stays. Errors: NotFound.
func (s *Service) DeleteUser(ctx context.Context, projectID, id string) error {
	if err := s.write(ctx, projectID, func(tx *store.Tx) error { return tx.DeleteUser(ctx, projectID, id) }); err != nil {
		return storeErr(err, "user "+id)
	}
	return nil
}

// UserMe returns the calling user. Errors: Forbidden for any other kind of
// principal, NotFound if the user is gone.
func (s *Service) UserMe(ctx context.Context, p auth.Principal) (User, error) {
	if p.Kind != auth.KindUser {
		return User{}, fault.Forbidden("GET /user/me answers for user tokens only; this token is a %s's", p.Kind)
	}
	return s.GetUser(ctx, p.ProjectID, p.ID)
}

// AcceptUserInvitation consumes a one-time user invitation link and sets
// the user's password. Errors: NotFound for an unknown, used or expired
// link; Invalid for a weak password.
func (s *Service) AcceptUserInvitation(ctx context.Context, token, password string) (User, error) {
	if err := checkPassword(password); err != nil {
		return User{}, err
	}
	gone := fault.NotFound("this invitation link is unknown, expired or already used")
	hash := auth.HashSecret(token)
	u, err := s.store.FindUserInvitation(ctx, hash)
	if err != nil {
		return User{}, notFoundAs(err, gone)
	}
	if s.now().After(u.InvitationExpiresAt) {
		return User{}, gone
	}
	pw, err := s.hashPassword(password)
	if err != nil {
		return User{}, err
	}
	if err := s.write(ctx, u.ProjectID, func(tx *store.Tx) error { return tx.AcceptUserInvitation(ctx, u.ProjectID, u.ID, hash, pw) }); err != nil {
		return User{}, notFoundAs(err, gone)
	}
	return s.GetUser(ctx, u.ProjectID, u.ID)
}
