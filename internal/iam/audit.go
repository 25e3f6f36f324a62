package iam

import (
	"context"

	"github.com/wardhealth/ward/internal/store"
)

// RecordAudit stores one audit row on its own: a Project API write or a
// request the policy gate denied. (FHIR writes put theirs in their own
// transaction through store.WithAudit.)
func (s *Service) RecordAudit(ctx context.Context, e store.AuditEvent) error {
	return s.store.InsertAudit(ctx, e)
}
