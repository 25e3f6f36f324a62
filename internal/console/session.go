package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"sync"
	"time"
)

// A console session: the cookie holds a random token; the server keeps
// only its hash, with the developer's short-lived access token (never sent
// to the browser), the project being worked on and the CSRF token of the
// session's forms. Sessions live in memory: a restart signs everyone out,
// and behind several replicas the load balancer must keep a browser on
// one (docs/console.md).

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

// maxSessions bounds memory: only a successful sign-in adds one, and
// when full the one closest to expiry goes.
const maxSessions = 10000

type sessions struct {
	mu  sync.Mutex
	m   map[string]session
	now func() time.Time
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{m: map[string]session{}, now: now}
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
func (s *sessions) start(developerID, accessToken, project, projectName string, expires time.Time) (string, error) {
	tok, err := randomToken()
	if err != nil {
		return "", err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.m) >= maxSessions {
		var oldest string
		for k, v := range s.m {
			if !v.Expires.After(now) {
				delete(s.m, k)
				continue
			}
			if oldest == "" || v.Expires.Before(s.m[oldest].Expires) {
				oldest = k
			}
		}
		if len(s.m) >= maxSessions {
			delete(s.m, oldest)
		}
	}
	key := hashToken(tok)
	s.m[key] = session{key: key, DeveloperID: developerID, AccessToken: accessToken, Project: project, ProjectName: projectName, CSRF: csrf, Expires: expires}
	return tok, nil
}

// get returns the session of a cookie token; false when there is none:
// never issued (forged), expired or ended.
func (s *sessions) get(tok string) (session, bool) {
	if tok == "" {
		return session{}, false
	}
	key := hashToken(tok)
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[key]
	if !ok {
		return session{}, false
	}
	if !sess.Expires.After(s.now()) {
		delete(s.m, key)
		return session{}, false
	}
	return sess, true
}

// setProject switches the session's project.
func (s *sessions) setProject(key, project, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.m[key]; ok {
		sess.Project, sess.ProjectName = project, name
		s.m[key] = sess
	}
}

// end forgets a session.
func (s *sessions) end(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// validCSRF reports whether a form's token is its session's.
func validCSRF(sess session, formToken string) bool {
	return sess.CSRF != "" && formToken != "" && subtle.ConstantTimeCompare([]byte(sess.CSRF), []byte(formToken)) == 1
}
