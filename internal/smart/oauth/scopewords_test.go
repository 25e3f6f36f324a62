package oauth

import (
	"reflect"
	"testing"
)

func TestDescribeScopes(t *testing.T) {
	for _, c := range []struct {
		name    string
		scopes  []string
		patient string
		want    []consentItem
	}{
		{"a patient's own records, identity once", []string{"launch/patient", "openid", "fhirUser", "offline_access", "patient/*.rs"}, "", []consentItem{
			{"See all of your health records", "patient/*.rs"},
			{"Know which patient record is yours", "launch/patient"},
			{"Know who you are: your account and your name", "openid, fhirUser"},
			{"Stay connected for up to 30 days, without asking you to sign in again", "offline_access"},
		}},
		{"a chosen patient, v1 and v2 merged", []string{"patient/Observation.read", "patient/Observation.rs", "patient/Patient.cruds", "launch/patient"}, "Bob Smith", []consentItem{
			{"See Bob Smith's test results and measurements", "patient/Observation.read, patient/Observation.rs"},
			{"See, add, change and delete Bob Smith's basic details (name, birth date, contact details)", "patient/Patient.cruds"},
			{"Know that you chose Bob Smith", "launch/patient"},
		}},
		{"user scopes, unknown types, filters", []string{"user/*.cud", "user/MedicationDispense.r", "patient/Observation.rs?category=laboratory", "online_access", "custom"}, "", []consentItem{
			{"Add, change and delete all records your account can access", "user/*.cud"},
			{"See medication dispense records your account can access", "user/MedicationDispense.r"},
			{"See your test results and measurements (only some of them: category=laboratory)", "patient/Observation.rs?category=laboratory"},
			{"Stay connected while you use it (up to 12 hours)", "online_access"},
			{"Use the permission custom", "custom"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := describeScopes(c.scopes, c.patient); !reflect.DeepEqual(got, c.want) {
				t.Errorf("describeScopes(%v, %q) =\n%q\nwant\n%q", c.scopes, c.patient, got, c.want)
			}
		})
	}
}
