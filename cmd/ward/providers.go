package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/egress"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/provider/clearinghouse"
	"github.com/wardhealth/ward/internal/provider/erx"
	"github.com/wardhealth/ward/internal/provider/fax"
	"github.com/wardhealth/ward/internal/provider/payment"
	"github.com/wardhealth/ward/internal/provider/sms"
	"github.com/wardhealth/ward/internal/zambda"
)

// projectSecret reads a project secret for a provider; ok false when unset.
func projectSecret(zambdas *zambda.Service) func(ctx context.Context, projectID, name string) (string, bool, error) {
	return func(ctx context.Context, projectID, name string) (string, bool, error) {
		s, err := zambdas.GetSecret(ctx, projectID, name)
		if errors.Is(err, fault.ErrNotFound) {
			return "", false, nil
		}
		return s.Value, err == nil, err
	}
}

// newPayment builds paymentMethod.* and charge.*: provider choices from the
// project's settings, Stripe's keys from its secrets, requests through the
// egress policy.
func newPayment(c config, svc *services, zambdas *zambda.Service, eg *egress.Policy, log *slog.Logger) *payment.Service {
	return payment.New(payment.Config{StripeURL: c.StripeURL}, payment.Deps{
		FHIR:      svc.fhir,
		Store:     svc.store,
		Providers: projectProviders(svc),
		Secret:    projectSecret(zambdas),
		HTTP:      eg.HTTPClient(30 * time.Second),
		Log:       log,
		Now:       time.Now,
	})
}

// newSMS builds transactional SMS: provider choices from the project's
// settings, credentials from its secrets, requests through the egress policy.
func newSMS(c config, svc *services, zambdas *zambda.Service, eg *egress.Policy, log *slog.Logger) *sms.Service {
	return sms.New(sms.Config{PublicURL: c.PublicURL, TwilioURL: c.TwilioURL}, sms.Deps{
		FHIR:      svc.fhir,
		Providers: projectProviders(svc),
		Secret:    projectSecret(zambdas),
		HTTP:      eg.HTTPClient(30 * time.Second),
		Log:       log,
		Now:       time.Now,
	})
}

// newERx builds e-prescribing: provider choices from the project's settings;
// the local provider's directories are the project's FHIR resources.
func newERx(c config, svc *services) *erx.Service {
	return erx.New(erx.Deps{
		FHIR:      svc.fhir,
		Providers: projectProviders(svc),
		Local:     &erx.Local{Catalog: svc.fhir, PublicURL: c.PublicURL},
	})
}

// newFax builds fax: numbers in the store, documents from Z3 as the
// caller may read them, the provider's requests through the egress policy.
func newFax(c config, svc *services, zambdas *zambda.Service, eg *egress.Policy, log *slog.Logger) *fax.Service {
	return fax.New(fax.Config{PublicURL: c.PublicURL, PhaxioURL: c.PhaxioURL}, fax.Deps{
		FHIR:    svc.fhir,
		Numbers: svc.store,
		Objects: svc.z3,
		Authorize: func(ctx context.Context, p auth.Principal, action, resource string) error {
			_, err := svc.iam.Authorize(ctx, p, action, resource)
			return err
		},
		Providers: projectProviders(svc),
		Secret:    projectSecret(zambdas),
		HTTP:      eg.HTTPClient(60 * time.Second),
		Log:       log,
		Now:       time.Now,
	})
}

// newRCM builds the SDK's rcm service: the clearinghouse from the project's
// settings, its credentials from the project's secrets, requests through
// the egress policy.
func newRCM(c config, svc *services, zambdas *zambda.Service, eg *egress.Policy, log *slog.Logger) *clearinghouse.RCM {
	return clearinghouse.New(clearinghouse.Config{StediURL: c.StediURL}, clearinghouse.Deps{
		FHIR:      svc.fhir,
		Providers: projectProviders(svc),
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

// projectProviders reads a project's provider choices (its settings'
// "providers"), which every outside service asks per request.
func projectProviders(svc *services) func(ctx context.Context, projectID string) (map[string]string, error) {
	return func(ctx context.Context, projectID string) (map[string]string, error) {
		p, err := svc.iam.GetProject(ctx, projectID)
		return p.Providers, err
	}
}
