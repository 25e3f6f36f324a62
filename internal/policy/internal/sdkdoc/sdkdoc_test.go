package sdkdoc

import (
	"reflect"
	"testing"
)

// The comment shapes below are the ones @oystehr/sdk 4.2.6 uses.
const sample = `class Charge extends SDKResource {
    /**
     * Charge a patient.
     *
     * Access Policy Requirements:
     * Action: ` + "`Payment:Issue`" + `
     * Access Policy Resource: ` + "`Payment:Charge`" + `
     * Actions: ` + "`FHIR:Read,FHIR:Create,FHIR:Update`" + `
     * Access Policy Resource: ` + "`FHIR:ChargeItem:*,`FHIR:PaymentReconciliation:*`" + `
     * Action: ` + "`FHIR:Read`" + `
     * Access Policy Resources: ` + "`FHIR:Patient:*,FHIR:Encounter:*`" + `
     */
    issue(params, request) {
        return this.request('/payment/charge/issue', 'post')(params, request);
    }
    /**
     * Presigned URL.
     *
     * Access Policy Action: ` + "`Z3:PutObject` or `Z3:GetObject`" + `
     * Access Policy Resource: ` + "`Z3:BucketName:ObjectPath`" + `
     * Access Policy Action: ` + "`Messaging:GetConversationToken`" + `
     * Access Policy Resource: ` + "`Messaging:Conversation`." + `
     * Action: ` + "`FHIR:Read`" + `
     */

    getPresignedUrl(params, request) {}
    /**
     * No requirements here.
     */
    me(request) {}
}
`

func TestExtract(t *testing.T) {
	got := Extract("charge", sample)
	want := []Row{
		{"charge.issue", "Payment:Issue", []string{"Payment:Charge"}},
		{"charge.issue", "FHIR:Read", []string{"FHIR:ChargeItem:*", "FHIR:PaymentReconciliation:*"}},
		{"charge.issue", "FHIR:Create", []string{"FHIR:ChargeItem:*", "FHIR:PaymentReconciliation:*"}},
		{"charge.issue", "FHIR:Update", []string{"FHIR:ChargeItem:*", "FHIR:PaymentReconciliation:*"}},
		{"charge.issue", "FHIR:Read", []string{"FHIR:Patient:*", "FHIR:Encounter:*"}},
		{"charge.getPresignedUrl", "Z3:PutObject", []string{"Z3:BucketName:ObjectPath"}},
		{"charge.getPresignedUrl", "Z3:GetObject", []string{"Z3:BucketName:ObjectPath"}},
		{"charge.getPresignedUrl", "Messaging:GetConversationToken", []string{"Messaging:Conversation"}},
		{"charge.getPresignedUrl", "FHIR:Read", nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Extract:\n got %v\nwant %v", got, want)
	}
	version, back, err := Parse(Format("4.2.6", got))
	if err != nil || version != "4.2.6" || !reflect.DeepEqual(back, want) {
		t.Errorf("Parse(Format) = %q, %v, %v", version, back, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, text := range []string{"", "# only a comment\n", "a.b\tX:Y\t\n", "sdk 1.0.0\na.b X:Y\n"} {
		if _, _, err := Parse(text); err == nil {
			t.Errorf("Parse(%q) accepted", text)
		}
	}
}
