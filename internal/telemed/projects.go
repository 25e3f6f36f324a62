package telemed

import (
	"context"
	"net/http"

	"github.com/wardhealth/ward/internal/fault"
)

// The project secrets of a project's own LiveKit (docs/providers.md).
const (
	SecretLiveKitURL    = "LIVEKIT_URL"
	SecretLiveKitKey    = "LIVEKIT_API_KEY"
	SecretLiveKitSecret = "LIVEKIT_API_SECRET"
)

// ProviderLiveKit is the video provider's name in a project's settings
// (providers: {"video": "livekit"}).
const ProviderLiveKit = "livekit"

// VideoFor returns a project's video provider. Errors: Unavailable when
// the project has none, Invalid when its settings are incomplete.
type VideoFor func(ctx context.Context, projectID string) (Video, error)

// Fixed is one provider for every project (nil: none).
func Fixed(v Video) VideoFor {
	return func(context.Context, string) (Video, error) {
		if v == nil {
			return nil, fault.Unavailable("no video provider is configured (docs/telemed.md)")
		}
		return v, nil
	}
}

// Projects picks each project's video provider: the server's LiveKit
// (its flags) unless the project names its own in its secrets.
type Projects struct {
	// Server is the LiveKit of the server's flags (URL empty: none).
	Server LiveKitConfig
	// Choice returns the project's provider for "video" ("" when unset).
	Choice func(ctx context.Context, projectID string) (string, error)
	// Secret returns a project secret's value; ok false when it is not set.
	Secret func(ctx context.Context, projectID, name string) (value string, ok bool, err error)
	// HTTP is the egress policy's client.
	HTTP *http.Client
}

// For implements VideoFor. A project's own LiveKit needs its key pair
// (LIVEKIT_API_KEY and LIVEKIT_API_SECRET; LIVEKIT_URL defaults to the
// server's): a URL of its own never gets the server's credentials.
func (p *Projects) For(ctx context.Context, projectID string) (Video, error) {
	choice, err := p.Choice(ctx, projectID)
	if err != nil {
		return nil, err
	}
	switch choice {
	case "", "local", ProviderLiveKit:
	default:
		return nil, fault.Invalid("the project's video provider %q is not one this server has", choice)
	}
	cfg := p.Server
	if choice == ProviderLiveKit {
		vals := map[string]string{}
		for _, name := range []string{SecretLiveKitURL, SecretLiveKitKey, SecretLiveKitSecret} {
			v, ok, err := p.Secret(ctx, projectID, name)
			if err != nil {
				return nil, err
			}
			if ok {
				vals[name] = v
			}
		}
		key, secret, url := vals[SecretLiveKitKey], vals[SecretLiveKitSecret], vals[SecretLiveKitURL]
		switch {
		case key != "" && secret != "":
			cfg.APIKey, cfg.APISecret = key, secret
			if url != "" {
				cfg.URL = url
			}
		case key != "" || secret != "" || url != "":
			return nil, fault.Invalid("the project's LiveKit needs both secrets %s and %s (and %s for a server of its own)",
				SecretLiveKitKey, SecretLiveKitSecret, SecretLiveKitURL)
		}
	}
	if cfg.URL == "" {
		return nil, fault.Unavailable("no video provider is configured (docs/telemed.md)")
	}
	cfg.HTTP = p.HTTP
	lk, err := NewLiveKit(cfg)
	if err != nil {
		return nil, fault.Invalid("the project's LiveKit: %v", err)
	}
	return lk, nil
}
