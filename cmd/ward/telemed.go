package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/telemed"
	"github.com/wardhealth/ward/internal/zambda"
)

// telemedService builds video meetings: each project on the server's
// LiveKit (the flags), or on its own when its settings say
// providers.video = "livekit" and its secrets hold the key pair.
func telemedService(c config, svc *services, zambdas *zambda.Service, eg *egress.Policy, log *slog.Logger) (*telemed.Service, error) {
	server := telemed.LiveKitConfig{URL: c.LiveKitURL, APIKey: c.LiveKitAPIKey, APISecret: c.LiveKitAPISecret,
		HTTP: eg.HTTPClient(10 * time.Second)}
	if c.LiveKitURL != "" {
		// Checked at start: a bad flag fails the server, not each call.
		if _, err := telemed.NewLiveKit(server); err != nil {
			return nil, fmt.Errorf("--livekit-url: %w", err)
		}
		log.Info("telemed video on LiveKit", "url", c.LiveKitURL)
	}
	projects := &telemed.Projects{Server: server, HTTP: server.HTTP,
		Choice: func(ctx context.Context, projectID string) (string, error) {
			p, err := svc.iam.GetProject(ctx, projectID)
			return p.Providers["video"], err
		},
		Secret: projectSecret(zambdas)}
	return telemed.New(svc.fhir, projects.For, log, time.Now), nil
}
