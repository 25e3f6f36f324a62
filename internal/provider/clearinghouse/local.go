package clearinghouse

import (
	"context"
	"fmt"
	"time"

	"github.com/wardhealth/ward/internal/rcm"
	"github.com/wardhealth/ward/internal/x12"
)

// Local stands in for a clearinghouse and its payers, inside Ward: it
// answers 270s from the project's Coverage resources and acknowledges
// 837Ps with a 277CA (accepted when the claim passes the validator,
// rejected otherwise). Nothing leaves Ward; no claim is ever paid.
type Local struct {
	// Coverages returns the Coverage resources (JSON) that may be the
	// inquiry's subscriber's.
	Coverages func(ctx context.Context, q rcm.Inquiry) ([][]byte, error)
	Now       func() time.Time
}

var _ Clearinghouse = Local{}

// Eligibility answers a 270 with a 271, swapping the envelope's sender
// and receiver and echoing its control number.
func (l Local) Eligibility(ctx context.Context, x270 []byte) ([]byte, error) {
	ix, set, err := one(x270, "270")
	if err != nil {
		return nil, err
	}
	q, err := rcm.ReadInquiry(set)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	covs, err := l.Coverages(ctx, q)
	if err != nil {
		return nil, err
	}
	now := l.Now()
	a := rcm.AnswerFromCoverages(q, covs)
	return rcm.Interchange(rcm.Segments271(a, now.Format("20060102"), now.Format("1504")), reply(ix, "HB", rcm.Version271, now), "271").Bytes()
}

// Submit acknowledges an 837P with a 277CA.
func (l Local) Submit(_ context.Context, x837 []byte) ([]byte, string, error) {
	ix, set, err := one(x837, "837")
	if err != nil {
		return nil, "", err
	}
	segs := rcm.Loops837P(set)
	p, err := rcm.Read837P(segs)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrRefused, err)
	}
	now := l.Now()
	ref := "LOCAL-" + ix.Segments[0].E(13)
	ack := rcm.Segments277CA(p, len(rcm.Validate(segs)) == 0, ref, now.Format("20060102"), now.Format("1504"))
	b, err := rcm.Interchange(ack, reply(ix, "HN", rcm.Version277CA, now), "277").Bytes()
	return b, ref, err
}

// one parses an interchange holding one transaction set of the given id.
func one(b []byte, setID string) (*x12.Interchange, []x12.Segment, error) {
	ix, err := x12.Parse(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	sets := ix.Sets()
	if len(sets) != 1 || sets[0].Segments[0].E(1) != setID {
		return nil, nil, fmt.Errorf("%w: want one %s transaction set", ErrRefused, setID)
	}
	return ix, sets[0].Segments, nil
}

// reply is the envelope of an answer to ix: sender and receiver swapped,
// the same control number.
func reply(ix *x12.Interchange, functional, version string, now time.Time) x12.Envelope {
	isa := ix.Segments[0]
	var ctl int
	fmt.Sscanf(isa.E(13), "%d", &ctl)
	return x12.Envelope{SenderQual: isa.E(7), SenderID: trim(isa.E(8)), ReceiverQual: isa.E(5), ReceiverID: trim(isa.E(6)),
		Control: ctl, Time: now, Test: isa.E(15) == "T", FunctionalID: functional, Version: version}
}

func trim(s string) string {
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}
