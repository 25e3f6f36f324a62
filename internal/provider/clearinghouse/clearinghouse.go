// Package clearinghouse sends X12 transactions to payers: 270 eligibility
// inquiries (answered by a 271) and 837P claims (acknowledged by a 277CA,
// at once or later). A project picks its clearinghouse in its settings
// (providers.clearinghouse): "local" answers from the project's own
// Coverage resources; "stedi" posts raw X12 to Stedi's Change
// Healthcare-compatible API. The Service turns the SDK's rcm calls into
// these transactions and their answers into FHIR resources.
package clearinghouse

import (
	"context"
	"errors"
)

// ErrRefused is a clearinghouse's refusal of what Ward sent (a 4xx): bad
// credentials, an X12 it does not accept. Final, not retried.
var ErrRefused = errors.New("clearinghouse: refused")

// Clearinghouse is one way to reach payers.
type Clearinghouse interface {
	// Eligibility sends a 270 interchange and returns the 271.
	Eligibility(ctx context.Context, x270 []byte) ([]byte, error)
	// Submit sends an 837P interchange. It returns the 277CA when the
	// clearinghouse answers with one at once, else nil and its own
	// reference for the claim.
	Submit(ctx context.Context, x837 []byte) (ack []byte, reference string, err error)
}
