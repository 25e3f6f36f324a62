package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/telemed"
)

// telemedService builds video meetings on the configured LiveKit, or
// without a provider (the endpoints then say none is configured).
func telemedService(c config, f *fhir.Service, eg *egress.Policy, log *slog.Logger) (*telemed.Service, error) {
	if c.LiveKitURL == "" {
		return telemed.New(f, nil, log, time.Now), nil
	}
	lk, err := telemed.NewLiveKit(telemed.LiveKitConfig{URL: c.LiveKitURL, APIKey: c.LiveKitAPIKey,
		APISecret: c.LiveKitAPISecret, HTTP: eg.HTTPClient(10 * time.Second)})
	if err != nil {
		return nil, fmt.Errorf("--livekit-url: %w", err)
	}
	log.Info("telemed video on LiveKit", "url", c.LiveKitURL)
	return telemed.New(f, lk, log, time.Now), nil
}
