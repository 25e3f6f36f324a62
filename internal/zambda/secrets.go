package zambda

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
)

// Sealer encrypts secret values at rest with AES-256-GCM. The project and
// the secret's name are the additional data, so a ciphertext copied to
// another row or project does not decrypt.
type Sealer struct{ aead cipher.AEAD }

// NewSealer takes the 32-byte key from configuration.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("the secrets key must be 32 bytes, not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

func aad(projectID, name string) []byte { return []byte(projectID + "\x00" + name) }

// Seal encrypts value: nonce || ciphertext.
func (s *Sealer) Seal(projectID, name, value string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, []byte(value), aad(projectID, name))
}

// Open decrypts what Seal made.
func (s *Sealer) Open(projectID, name string, sealed []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return "", errors.New("secret ciphertext is truncated")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], aad(projectID, name))
	if err != nil {
		return "", fmt.Errorf("secret %q does not decrypt with the configured key (was WARD_SECRETS_KEY changed?)", name)
	}
	return string(plain), nil
}

// Secret is a project secret as the API shows it.
type Secret struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

const maxSecretBytes = 64 << 10

// ValidName checks a zambda or secret name: [A-Za-z0-9_-], 1-128 characters.
func ValidName(kind, name string) error {
	if name == "" || len(name) > 128 {
		return fault.Invalid("%s name must be 1-128 characters of A-Z a-z 0-9 _ -", kind)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fault.Invalid("%s name %q may only hold A-Z a-z 0-9 _ -", kind, clip(name))
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// SetSecret creates or replaces a secret.
func (s *Service) SetSecret(ctx context.Context, projectID, name, value string) (Secret, error) {
	if err := ValidName("secret", name); err != nil {
		return Secret{}, err
	}
	if len(value) > maxSecretBytes {
		return Secret{}, fault.Invalid("secret %q is %d bytes; the limit is %d", name, len(value), maxSecretBytes)
	}
	if err := s.st.PutSecret(ctx, projectID, name, s.seal.Seal(projectID, name, value), s.now()); err != nil {
		return Secret{}, err
	}
	return Secret{Name: name, Value: value}, nil
}

// GetSecret returns one secret with its value.
func (s *Service) GetSecret(ctx context.Context, projectID, name string) (Secret, error) {
	sealed, err := s.st.GetSecret(ctx, projectID, name)
	if errors.Is(err, store.ErrNotFound) {
		return Secret{}, fault.NotFound("no secret %q", name)
	}
	if err != nil {
		return Secret{}, err
	}
	v, err := s.seal.Open(projectID, name, sealed)
	if err != nil {
		return Secret{}, err
	}
	return Secret{Name: name, Value: v}, nil
}

// ListSecrets returns the names only.
func (s *Service) ListSecrets(ctx context.Context, projectID string) ([]Secret, error) {
	all, err := s.st.Secrets(ctx, projectID)
	if err != nil {
		return nil, err
	}
	out := make([]Secret, 0, len(all))
	for n := range all {
		out = append(out, Secret{Name: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeleteSecret removes a secret.
func (s *Service) DeleteSecret(ctx context.Context, projectID, name string) error {
	err := s.st.DeleteSecret(ctx, projectID, name)
	if errors.Is(err, store.ErrNotFound) {
		return fault.NotFound("no secret %q", name)
	}
	return err
}

// secretValues decrypts every secret of the project for an invocation.
func (s *Service) secretValues(ctx context.Context, projectID string) (map[string]string, error) {
	all, err := s.st.Secrets(ctx, projectID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(all))
	for n, sealed := range all {
		v, err := s.seal.Open(projectID, n, sealed)
		if err != nil {
			return nil, err
		}
		out[n] = v
	}
	return out, nil
}
