package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/provider/clearinghouse"
	"github.com/wardhealth/ward/internal/provider/sms"
	"github.com/wardhealth/ward/internal/zambda"
)

// newSMS builds transactional SMS: provider choices from the project's
// settings, credentials from its secrets, requests through the egress policy.
func newSMS(c config, svc *services, zambdas *zambda.Service, eg *egress.Policy, log *slog.Logger) *sms.Service {
	return sms.New(sms.Config{PublicURL: c.PublicURL, TwilioURL: c.TwilioURL}, sms.Deps{
		FHIR: svc.fhir,
		Providers: func(ctx context.Context, projectID string) (map[string]string, error) {
			p, err := svc.iam.GetProject(ctx, projectID)
			return p.Providers, err
		},
		Secret: func(ctx context.Context, projectID, name string) (string, bool, error) {
			s, err := zambdas.GetSecret(ctx, projectID, name)
			if errors.Is(err, fault.ErrNotFound) {
				return "", false, nil
			}
			return s.Value, err == nil, err
		},
		HTTP: eg.HTTPClient(30 * time.Second),
		Log:  log,
		Now:  time.Now,
	})
}

// newRCM builds the SDK's rcm service: the clearinghouse from the project's
// settings, its credentials from the project's secrets, requests through
// the egress policy.
func newRCM(c config, svc *services, zambdas *zambda.Service, eg *egress.Policy, log *slog.Logger) *clearinghouse.RCM {
	return clearinghouse.New(clearinghouse.Config{StediURL: c.StediURL}, clearinghouse.Deps{
		FHIR: svc.fhir,
		Providers: func(ctx context.Context, projectID string) (map[string]string, error) {
			p, err := svc.iam.GetProject(ctx, projectID)
			return p.Providers, err
		},
		Secret: func(ctx context.Context, projectID, name string) (string, bool, error) {
			s, err := zambdas.GetSecret(ctx, projectID, name)
			if errors.Is(err, fault.ErrNotFound) {
				return "", false, nil
			}
			return s.Value, err == nil, err
		},
		HTTP: eg.HTTPClient(90 * time.Second),
		Log:  log,
		Now:  time.Now,
	})
}
