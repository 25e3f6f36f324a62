package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// User is a person who logs in to a project's applications. Email is
// lower-cased and unique in the project; Email or PhoneNumber may be "".
type User struct {
	ProjectID           string
	ID                  string
	Email               string
	PhoneNumber         string
	Name                string
	AuthMethod          string // "email" or "sms"
	Profile             string // FHIR reference, e.g. "Patient/123"
	AccessPolicy        []byte // nil when the user has no inline policy
	PasswordHash        string // bcrypt; "" until a password is set
	ApplicationID       string // the application the user was invited to, if any
	InvitationHash      string // set until the invitation is accepted
	InvitationExpiresAt time.Time
	CreatedAt           time.Time
}

const userCols = `project_id, id, email, phone_number, name, authentication_method, profile, access_policy, password_hash, application_id, invitation_hash, invitation_expires_at, created_at`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var email, phone, policy, invitation sql.NullString
	var expires sql.NullInt64
	var created int64
	if err := row.Scan(&u.ProjectID, &u.ID, &email, &phone, &u.Name, &u.AuthMethod, &u.Profile, &policy, &u.PasswordHash,
		&u.ApplicationID, &invitation, &expires, &created); err != nil {
		return User{}, err
	}
	if policy.Valid {
		u.AccessPolicy = []byte(policy.String)
	}
	u.Email, u.PhoneNumber, u.InvitationHash, u.CreatedAt = email.String, phone.String, invitation.String, fromMS(created)
	if expires.Valid {
		u.InvitationExpiresAt = fromMS(expires.Int64)
	}
	return u, nil
}

// CreateUser inserts u. Errors: ErrConflict when the email or phone number
// is taken in the project.
func (s *Store) CreateUser(ctx context.Context, u User) error {
	var expires sql.NullInt64
	if !u.InvitationExpiresAt.IsZero() {
		expires = sql.NullInt64{Int64: ms(u.InvitationExpiresAt), Valid: true}
	}
	_, err := s.exec(ctx, `INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ProjectID, u.ID, nullString(u.Email), nullString(u.PhoneNumber), u.Name, u.AuthMethod, u.Profile, nullBytes(u.AccessPolicy),
		u.PasswordHash, u.ApplicationID, nullString(u.InvitationHash), expires, ms(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

// GetUser returns one user of the project. Errors: ErrNotFound.
func (s *Store) GetUser(ctx context.Context, projectID, id string) (User, error) {
	u, err := scanUser(s.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE project_id = ? AND id = ?`, projectID, id))
	if err != nil {
		return User{}, fmt.Errorf("get user: %w", s.mapErr(err))
	}
	return u, nil
}

// GetUserByEmail returns the project's user with a (lower-cased) email.
// Errors: ErrNotFound.
func (s *Store) GetUserByEmail(ctx context.Context, projectID, email string) (User, error) {
	u, err := scanUser(s.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE project_id = ? AND email = ?`, projectID, email))
	if err != nil {
		return User{}, fmt.Errorf("get user by email: %w", s.mapErr(err))
	}
	return u, nil
}

// UserSort names the orders ListUsers knows.
type UserSort string

const (
	UserSortID        UserSort = "id"
	UserSortName      UserSort = "name"
	UserSortEmail     UserSort = "email"
	UserSortPhone     UserSort = "phoneNumber"
	UserSortCreatedAt UserSort = "createdAt"
)

// userSortKeys maps each order to its column expression (NULLs sort as "").
var userSortKeys = map[UserSort]string{
	UserSortID:        "id",
	UserSortName:      "name",
	UserSortEmail:     "COALESCE(email, '')",
	UserSortPhone:     "COALESCE(phone_number, '')",
	UserSortCreatedAt: "created_at",
}

// UserFilter selects users for ListUsers. Empty fields do not filter.
type UserFilter struct {
	Name       string // substring, case-insensitive
	Email      string // substring, case-insensitive
	ID         string
	Profile    string // exact reference
	RoleID     string
	Sort       UserSort // "" means by id
	Descending bool
	After      string // cursor: UserCursor of the last row returned
	Limit      int    // 0 means no limit
}

// UserCursor is the After value that continues a listing after u.
func UserCursor(u User, sort UserSort) string {
	var key string
	switch sort {
	case UserSortName:
		key = u.Name
	case UserSortEmail:
		key = u.Email
	case UserSortPhone:
		key = u.PhoneNumber
	case UserSortCreatedAt:
		key = strconv.FormatInt(ms(u.CreatedAt), 10)
	default:
		key = u.ID
	}
	return key + "\x00" + u.ID
}

// ListUsers returns the project's users matching f; an unknown Sort orders
// by id. Callers validate cursors: a createdAt cursor that is not a number
// is a plain error here.
func (s *Store) ListUsers(ctx context.Context, projectID string, f UserFilter) ([]User, error) {
	where := []string{`project_id = ?`}
	args := []any{projectID}
	if f.Name != "" {
		where = append(where, `LOWER(name) LIKE ?`)
		args = append(args, "%"+strings.ToLower(f.Name)+"%")
	}
	if f.Email != "" {
		where = append(where, `email LIKE ?`)
		args = append(args, "%"+strings.ToLower(f.Email)+"%")
	}
	if f.ID != "" {
		where = append(where, `id = ?`)
		args = append(args, f.ID)
	}
	if f.Profile != "" {
		where = append(where, `profile = ?`)
		args = append(args, f.Profile)
	}
	if f.RoleID != "" {
		where = append(where, `id IN (SELECT holder_id FROM role_holders WHERE project_id = ? AND holder_kind = 'user' AND role_id = ?)`)
		args = append(args, projectID, f.RoleID)
	}
	key, ok := userSortKeys[f.Sort]
	if !ok {
		key, f.Sort = "id", UserSortID
	}
	op, dir := ">", "ASC"
	if f.Descending {
		op, dir = "<", "DESC"
	}
	if f.After != "" {
		sortVal, afterID, _ := strings.Cut(f.After, "\x00")
		var v any = sortVal
		if f.Sort == UserSortCreatedAt {
			n, err := strconv.ParseInt(sortVal, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("list users: bad cursor: %w", err)
			}
			v = n
		}
		if f.Sort == UserSortID {
			where = append(where, `id `+op+` ?`)
			args = append(args, afterID)
		} else {
			where = append(where, `(`+key+` `+op+` ? OR (`+key+` = ? AND id `+op+` ?))`)
			args = append(args, v, v, afterID)
		}
	}
	q := `SELECT ` + userCols + ` FROM users WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + key + ` ` + dir + `, id ` + dir
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// UpdateUser overwrites email, phone number, name, profile and inline
// policy. Errors: ErrNotFound; ErrConflict when the email is taken.
func (s *Store) UpdateUser(ctx context.Context, u User) error {
	res, err := s.exec(ctx, `UPDATE users SET email = ?, phone_number = ?, name = ?, profile = ?, access_policy = ? WHERE project_id = ? AND id = ?`,
		nullString(u.Email), nullString(u.PhoneNumber), u.Name, u.Profile, nullBytes(u.AccessPolicy), u.ProjectID, u.ID)
	return affectedOne(res, err, "update user")
}

// SetUserPassword replaces a user's password hash. Errors: ErrNotFound.
func (s *Store) SetUserPassword(ctx context.Context, projectID, id, passwordHash string) error {
	res, err := s.exec(ctx, `UPDATE users SET password_hash = ? WHERE project_id = ? AND id = ?`, passwordHash, projectID, id)
	return affectedOne(res, err, "set user password")
}

// DeleteUser removes a user and its role holdings. Errors: ErrNotFound.
func (s *Store) DeleteUser(ctx context.Context, projectID, id string) error {
	if _, err := s.exec(ctx, `DELETE FROM role_holders WHERE project_id = ? AND holder_kind = 'user' AND holder_id = ?`, projectID, id); err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	for _, q := range []string{`DELETE FROM user_mfa WHERE project_id = ? AND user_id = ?`,
		`DELETE FROM user_password_resets WHERE project_id = ? AND user_id = ?`} {
		if _, err := s.exec(ctx, q, projectID, id); err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
	}
	res, err := s.exec(ctx, `DELETE FROM users WHERE project_id = ? AND id = ?`, projectID, id)
	return affectedOne(res, err, "delete user")
}

// FindUserInvitation returns the user whose invitation hash matches, in any
// project. Errors: ErrNotFound.
func (s *Store) FindUserInvitation(ctx context.Context, invitationHash string) (User, error) {
	u, err := scanUser(s.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE invitation_hash = ?`, invitationHash))
	if err != nil {
		return User{}, fmt.Errorf("find user invitation: %w", s.mapErr(err))
	}
	return u, nil
}

// AcceptUserInvitation clears the invitation (so the link works once) and
// sets the password hash. Errors: ErrNotFound if the link was already used.
func (s *Store) AcceptUserInvitation(ctx context.Context, projectID, id, invitationHash, passwordHash string) error {
	res, err := s.exec(ctx, `UPDATE users SET invitation_hash = NULL, invitation_expires_at = NULL, password_hash = ? WHERE project_id = ? AND id = ? AND invitation_hash = ?`,
		passwordHash, projectID, id, invitationHash)
	return affectedOne(res, err, "accept user invitation")
}
