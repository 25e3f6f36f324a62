package erx

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
)

type Enrollment struct {
	Registered        bool `json:"registered"`
	Confirmed         bool `json:"confirmed"`
	Active            bool `json:"active"`
	IdentityVerified  bool `json:"identityVerified"`
	TwoFactorEnrolled bool `json:"twoFactorEnrolled"`
	IsPrescribing     bool `json:"isPrescribing"`
}

// enrollment finds the practitioner's enrollment PractitionerRole (as the
// caller), after reading the Practitioner (404 when not readable).
func (s *Service) enrollment(ctx context.Context, p auth.Principal, practitionerID string) (map[string]any, error) {
	if err := fhirID(practitionerID, "practitionerId"); err != nil {
		return nil, err
	}
	if _, err := s.d.FHIR.Read(ctx, p, "Practitioner", practitionerID); err != nil {
		return nil, err
	}
	roles, err := s.search(ctx, p, "PractitionerRole", url.Values{"practitioner": {"Practitioner/" + practitionerID}, "_tag": {EnrollmentTag + "|enrollment"}})
	if err != nil || len(roles) == 0 {
		return nil, err
	}
	return roles[0], nil
}

// CheckEnrollment is erx.checkPractitionerEnrollment. Identity
// verification and two-factor enrollment are an upstream service's; the
// local provider has neither and reports them false.
func (s *Service) CheckEnrollment(ctx context.Context, p auth.Principal, practitionerID string) (Enrollment, error) {
	role, err := s.enrollment(ctx, p, practitionerID)
	if err != nil || role == nil {
		return Enrollment{}, err
	}
	active, _ := role["active"].(bool)
	return Enrollment{Registered: active, Confirmed: active, Active: active, IsPrescribing: active && prescribing(role)}, nil
}

func prescribing(role map[string]any) bool {
	codes, _ := role["code"].([]any)
	for _, c := range codes {
		cm, _ := c.(map[string]any)
		cs, _ := cm["coding"].([]any)
		for _, cd := range cs {
			m, _ := cd.(map[string]any)
			if m["system"] == PrescriberSystem && m["code"] == "prescriber" {
				return true
			}
		}
	}
	return false
}

// Enroll is erx.enrollPractitioner: the enrollment PractitionerRole is
// created, or made active again, as the caller.
func (s *Service) Enroll(ctx context.Context, p auth.Principal, practitionerID string, isPrescribing bool) error {
	role, err := s.enrollment(ctx, p, practitionerID)
	if err != nil {
		return err
	}
	pr, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return err
	}
	if err := pr.Enroll(ctx, p.ProjectID, practitionerID, isPrescribing); err != nil {
		return err
	}
	code := "non-prescriber"
	if isPrescribing {
		code = "prescriber"
	}
	set := func(m map[string]any) error {
		m["active"] = true
		m["code"] = []any{map[string]any{"coding": []any{map[string]any{"system": PrescriberSystem, "code": code}}}}
		return nil
	}
	if role != nil {
		id, _ := role["id"].(string)
		return s.updateAs(ctx, p, "PractitionerRole", id, set)
	}
	m := map[string]any{"resourceType": "PractitionerRole", "practitioner": map[string]any{"reference": "Practitioner/" + practitionerID},
		"meta": map[string]any{"tag": []any{map[string]any{"system": EnrollmentTag, "code": "enrollment"}}}}
	_ = set(m)
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("erx: enrollment: %w", err)
	}
	_, _, err = s.d.FHIR.Create(ctx, p, "PractitionerRole", body, "")
	return err
}

// Unenroll is erx.unenrollPractitioner: the enrollment becomes inactive
// (its history kept). A practitioner not enrolled is left as is.
func (s *Service) Unenroll(ctx context.Context, p auth.Principal, practitionerID string) error {
	role, err := s.enrollment(ctx, p, practitionerID)
	if err != nil || role == nil {
		return err
	}
	pr, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return err
	}
	if err := pr.Unenroll(ctx, p.ProjectID, practitionerID); err != nil {
		return err
	}
	id, _ := role["id"].(string)
	return s.updateAs(ctx, p, "PractitionerRole", id, func(m map[string]any) error {
		m["active"] = false
		return nil
	})
}

// Connect is erx.connectPractitioner: a link to prescribe at. A user whose
// profile is a Practitioner must be enrolled; the patient and encounter,
// when given, must be readable by the caller.
func (s *Service) Connect(ctx context.Context, p auth.Principal, patientID, encounterID string) (string, error) {
	pr, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return "", err
	}
	if typ, id, ok := strings.Cut(p.FHIRUser, "/"); ok && typ == "Practitioner" {
		e, err := s.CheckEnrollment(ctx, p, id)
		if err != nil {
			return "", err
		}
		if !e.Active {
			return "", fault.Invalid("Practitioner/%s is not enrolled in eRx (erx.enrollPractitioner)", id)
		}
	}
	if patientID != "" {
		if _, err := s.patient(ctx, p, patientID, false); err != nil {
			return "", err
		}
	}
	if encounterID != "" {
		if err := fhirID(encounterID, "encounterId"); err != nil {
			return "", err
		}
		if _, err := s.d.FHIR.Read(ctx, p, "Encounter", encounterID); err != nil {
			return "", err
		}
	}
	return pr.Connect(ctx, p.ProjectID, p.FHIRUser, patientID, encounterID)
}
