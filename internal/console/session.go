package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
)

// A console session: the cookie holds a random token; the server keeps
// only its hash, with the developer's short-lived access token (never sent
// to the browser, sealed with the master key), the project being worked
// on and the CSRF token of the session's forms. Sessions live in the
// database (SessionStore), so a restart keeps developers signed in and
// every replica on the same database accepts every session.

// SessionStore keeps sessions; *store.Store is the real one. Get and Set
// return store.ErrNotFound for a session that is unknown, ended or (Get)
// expired at now.
type SessionStore interface {
	PutConsoleSession(ctx context.Context, s store.ConsoleSession) error
	GetConsoleSession(ctx context.Context, hash string, now time.Time) (store.ConsoleSession, error)
	SetConsoleSessionProject(ctx context.Context, hash, projectID, projectName string) error
	DeleteConsoleSession(ctx context.Context, hash string) error
}

// session is a copy of a signed-in developer's state.
type session struct {
	key         string // the cookie token's hash
	DeveloperID string
	AccessToken string
	Project     string // the id of the project worked on
	ProjectName string
	CSRF        string
	Expires     time.Time
}

// errNoSession: the cookie names no live session (never issued, forged,
// expired, ended, or sealed with a master key no longer configured).
var errNoSession = errors.New("no console session")

type sessions struct {
	st   SessionStore
	seal *seal.Sealer
	now  func() time.Time
	log  *slog.Logger
}

func newSessions(st SessionStore, sealer *seal.Sealer, now func() time.Time, log *slog.Logger) *sessions {
	return &sessions{st: st, seal: sealer, now: now, log: log}
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte("console-session\x00" + tok))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// start keeps a new session and returns its cookie token.
func (s *sessions) start(ctx context.Context, developerID, accessToken, project, projectName string, expires time.Time) (string, error) {
	tok, err := randomToken()
	if err != nil {
		return "", err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", err
	}
	key := hashToken(tok)
	err = s.st.PutConsoleSession(ctx, store.ConsoleSession{Hash: key, DeveloperID: developerID, ProjectID: project, ProjectName: projectName,
		AccessToken: s.seal.Seal(seal.ConsoleSession(key), []byte(accessToken)), CSRF: csrf, CreatedAt: s.now(), ExpiresAt: expires})
	if err != nil {
		return "", err
	}
	return tok, nil
}

// get returns the session of a cookie token. Errors: errNoSession, or the
// database's.
func (s *sessions) get(ctx context.Context, tok string) (session, error) {
	if tok == "" || len(tok) > 128 {
		return session{}, errNoSession
	}
	key := hashToken(tok)
	row, err := s.st.GetConsoleSession(ctx, key, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return session{}, errNoSession
	}
	if err != nil {
		return session{}, fmt.Errorf("console session: %w", err)
	}
	access, err := s.seal.Open(seal.ConsoleSession(key), row.AccessToken)
	if err != nil {
		// Another master key sealed it (rotated since), or the row was
		// altered: the developer signs in again.
		s.log.WarnContext(ctx, "console session does not open: ended", "err", err)
		if derr := s.st.DeleteConsoleSession(ctx, key); derr != nil {
			return session{}, fmt.Errorf("console session: %w", derr)
		}
		return session{}, errNoSession
	}
	return session{key: key, DeveloperID: row.DeveloperID, AccessToken: string(access), Project: row.ProjectID,
		ProjectName: row.ProjectName, CSRF: row.CSRF, Expires: row.ExpiresAt}, nil
}

// setProject switches the session's project.
func (s *sessions) setProject(ctx context.Context, key, project, name string) error {
	err := s.st.SetConsoleSessionProject(ctx, key, project, name)
	if errors.Is(err, store.ErrNotFound) {
		return errNoSession
	}
	return err
}

// end forgets a session.
func (s *sessions) end(ctx context.Context, key string) error {
	return s.st.DeleteConsoleSession(ctx, key)
}

// validCSRF reports whether a form's token is its session's.
func validCSRF(sess session, formToken string) bool {
	return sess.CSRF != "" && formToken != "" && subtle.ConstantTimeCompare([]byte(sess.CSRF), []byte(formToken)) == 1
}

// memSessions keeps sessions in memory, for a console built without a
// database (tests): a restart forgets them.
type memSessions struct {
	mu sync.Mutex
	m  map[string]store.ConsoleSession
}

// maxMemSessions bounds memory: only a successful sign-in adds one, and
// when full the one closest to expiry goes.
const maxMemSessions = 10000

func newMemSessions() *memSessions { return &memSessions{m: map[string]store.ConsoleSession{}} }

func (m *memSessions) PutConsoleSession(_ context.Context, s store.ConsoleSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.m[s.Hash]; ok {
		return fmt.Errorf("store console session: %w", store.ErrConflict)
	}
	if len(m.m) >= maxMemSessions {
		var oldest string
		for k, v := range m.m {
			if !v.ExpiresAt.After(s.CreatedAt) {
				delete(m.m, k)
				continue
			}
			if oldest == "" || v.ExpiresAt.Before(m.m[oldest].ExpiresAt) {
				oldest = k
			}
		}
		if len(m.m) >= maxMemSessions {
			delete(m.m, oldest)
		}
	}
	m.m[s.Hash] = s
	return nil
}

func (m *memSessions) GetConsoleSession(_ context.Context, hash string, now time.Time) (store.ConsoleSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.m[hash]
	if !ok || !s.ExpiresAt.After(now) {
		delete(m.m, hash)
		return store.ConsoleSession{}, store.ErrNotFound
	}
	return s, nil
}

func (m *memSessions) SetConsoleSessionProject(_ context.Context, hash, projectID, projectName string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.m[hash]
	if !ok {
		return store.ErrNotFound
	}
	s.ProjectID, s.ProjectName = projectID, projectName
	m.m[hash] = s
	return nil
}

func (m *memSessions) DeleteConsoleSession(_ context.Context, hash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, hash)
	return nil
}
