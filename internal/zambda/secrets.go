package zambda

import (
	"context"
	"errors"
	"sort"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
)

// Secret values are sealed with the master key (package seal), labelled
// with their project and name, so a ciphertext copied to another row or
// project does not open.

// Secret is a project secret as get and set show it (the SDK's Secret).
// The value is always present, empty or not: the SDK types it as a
// required string, and Terraform calls a missing one an inconsistent result.
type Secret struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// SecretListItem is a secret as the list shows it (the SDK's
// SecretListItem): its name only, so listing never reveals values.
type SecretListItem struct {
	Name string `json:"name"`
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
	err := s.st.WithTx(ctx, func(tx *store.Tx) error {
		if err := seal.Fence(ctx, tx, s.sealer); err != nil {
			return err
		}
		return tx.PutSecret(ctx, projectID, name, s.sealer.Seal(seal.Secret(projectID, name), []byte(value)), s.now())
	})
	if errors.Is(err, seal.ErrWrongKey) {
		return Secret{}, fault.Wrap(fault.ErrUnavailable, err, staleKey)
	}
	if err != nil {
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
	v, err := s.open(projectID, name, sealed)
	if err != nil {
		return Secret{}, err
	}
	return Secret{Name: name, Value: v}, nil
}

// ListSecrets returns the names only.
func (s *Service) ListSecrets(ctx context.Context, projectID string) ([]SecretListItem, error) {
	all, err := s.st.Secrets(ctx, projectID)
	if err != nil {
		return nil, err
	}
	out := make([]SecretListItem, 0, len(all))
	for n := range all {
		out = append(out, SecretListItem{Name: n})
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
		v, err := s.open(projectID, n, sealed)
		if err != nil {
			return nil, err
		}
		out[n] = v
	}
	return out, nil
}

// staleKey is what a client hears from a server whose secrets key was
// rotated (`ward admin rotate-secrets-key`) while it ran: another server,
// or this one restarted with the new key, will answer.
const staleKey = "this server's secrets key was rotated and it has not restarted with the new one yet: try again shortly"

// open decrypts one secret.
func (s *Service) open(projectID, name string, sealed []byte) (string, error) {
	v, err := s.sealer.Open(seal.Secret(projectID, name), sealed)
	if errors.Is(err, seal.ErrWrongKey) {
		return "", fault.Wrap(fault.ErrUnavailable, err, staleKey)
	}
	if err != nil {
		return "", err
	}
	return string(v), nil
}
