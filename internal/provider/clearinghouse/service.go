package clearinghouse

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/provider"
	"github.com/wardhealth/ward/internal/rcm"
	"github.com/wardhealth/ward/internal/x12"
)

// The project secrets the clearinghouse providers read (docs/providers.md).
const (
	SecretAPIKey      = "CLEARINGHOUSE_API_KEY"
	SecretSubmitterID = "CLEARINGHOUSE_SUBMITTER_ID" // ISA06/GS02 and 1000A NM109; default "WARD"
)

// Service is the name of this service in project settings (providers).
const Service = "clearinghouse"

// FHIR is what the service needs of the FHIR API: everything as the caller.
type FHIR interface {
	Read(ctx context.Context, p auth.Principal, typ, id string) (fhir.Resource, error)
	Create(ctx context.Context, p auth.Principal, typ string, body []byte, ifNoneExist string) (fhir.Resource, bool, error)
	Update(ctx context.Context, p auth.Principal, typ, id string, body []byte, ifMatch string) (fhir.Resource, bool, error)
	Search(ctx context.Context, p auth.Principal, q *search.Query) (fhir.Page, error)
}

// Config is the service's tunables.
type Config struct {
	StediURL string // DefaultStediURL unless set
}

// Deps are what the service calls.
type Deps struct {
	FHIR      FHIR
	Providers func(ctx context.Context, projectID string) (map[string]string, error)
	Secret    func(ctx context.Context, projectID, name string) (value string, ok bool, err error)
	HTTP      *http.Client // the egress policy's client
	Log       *slog.Logger
	Now       func() time.Time
}

// RCM runs the SDK's rcm service.
type RCM struct {
	cfg Config
	d   Deps
}

// New builds the service.
func New(cfg Config, d Deps) *RCM {
	if cfg.StediURL == "" {
		cfg.StediURL = DefaultStediURL
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return &RCM{cfg: cfg, d: d}
}

// clearinghouse picks the project's provider and its submitter id.
func (s *RCM) clearinghouse(ctx context.Context, p auth.Principal) (string, Clearinghouse, string, error) {
	choices, err := s.d.Providers(ctx, p.ProjectID)
	if err != nil {
		return "", nil, "", err
	}
	submitter, ok, err := s.d.Secret(ctx, p.ProjectID, SecretSubmitterID)
	if err != nil {
		return "", nil, "", err
	}
	if !ok || submitter == "" {
		submitter = "WARD"
	}
	switch name := choices[Service]; name {
	case "", provider.Local:
		return provider.Local, Local{Now: s.d.Now, Coverages: func(ctx context.Context, q rcm.Inquiry) ([][]byte, error) {
			return s.coverages(ctx, p, q)
		}}, submitter, nil
	case "stedi":
		key, ok, err := s.d.Secret(ctx, p.ProjectID, SecretAPIKey)
		if err != nil {
			return "", nil, "", err
		}
		if !ok || key == "" {
			return "", nil, "", fault.Invalid("the project's clearinghouse is stedi but its secret %s is not set", SecretAPIKey)
		}
		return name, &Stedi{BaseURL: s.cfg.StediURL, APIKey: key, Client: s.d.HTTP}, submitter, nil
	default:
		return "", nil, "", fault.Invalid("the project's clearinghouse %q is not one this server has", name)
	}
}

// coverages finds, as the caller, the Coverages a local 270 may be about:
// by identifier, and those of patients with the subscriber's family name
// and birth date (whose subscriberId R4 cannot search).
func (s *RCM) coverages(ctx context.Context, p auth.Principal, q rcm.Inquiry) ([][]byte, error) {
	var out [][]byte
	queries := []url.Values{{"identifier": {q.Subscriber.MemberID.Val}}}
	if q.Subscriber.Name.Last.Val != "" && len(q.Subscriber.Birth.Val) == 8 {
		b := q.Subscriber.Birth.Val
		queries = append(queries, url.Values{"beneficiary:Patient.family": {q.Subscriber.Name.Last.Val},
			"beneficiary:Patient.birthdate": {b[:4] + "-" + b[4:6] + "-" + b[6:]}})
	}
	for _, v := range queries {
		v.Set("_count", "50")
		sq, err := search.ParseQuery("Coverage", v, false)
		if err != nil {
			return nil, fault.Invalid("%v", err)
		}
		page, err := s.d.FHIR.Search(ctx, p, sq)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Matches {
			out = append(out, r.Content)
		}
	}
	return out, nil
}

func (s *RCM) resolver(p auth.Principal) rcm.Resolve {
	return func(ctx context.Context, ref string) ([]byte, error) {
		typ, id, _ := strings.Cut(ref, "/")
		r, err := s.d.FHIR.Read(ctx, p, typ, id)
		return r.Content, err
	}
}

// referenceErr turns an unresolvable reference into a 400 (the resolver's
// own 404 and 403 pass through).
func referenceErr(err error) error {
	if errors.Is(err, rcm.ErrReference) {
		return fault.Invalid("%v", err)
	}
	return err
}

func (s *RCM) envelope(submitter, receiver string, test bool) x12.Envelope {
	n, _ := rand.Int(rand.Reader, big.NewInt(999999999))
	return x12.Envelope{SenderQual: "ZZ", SenderID: submitter, ReceiverQual: "ZZ", ReceiverID: receiver,
		Control: int(n.Int64()) + 1, Time: s.d.Now(), Test: test}
}

// Eligibility runs rcm.eligibilityCheck: the CoverageEligibilityRequest
// as a 270, sent through the project's clearinghouse, its 271 stored as a
// CoverageEligibilityResponse (as the caller) and returned.
func (s *RCM) Eligibility(ctx context.Context, p auth.Principal, requestID string) ([]byte, error) {
	if requestID == "" || strings.ContainsAny(requestID, "/?#") {
		return nil, fault.Invalid("eligibilityRequestId must be the id of a CoverageEligibilityRequest")
	}
	req, err := s.d.FHIR.Read(ctx, p, "CoverageEligibilityRequest", requestID)
	if err != nil {
		return nil, err
	}
	q, err := rcm.FromEligibilityRequest(ctx, req.Content, s.resolver(p))
	if err != nil {
		return nil, referenceErr(err)
	}
	name, ch, submitter, err := s.clearinghouse(ctx, p)
	if err != nil {
		return nil, err
	}
	env := s.envelope(submitter, q.Payer.NPI.Val, false)
	q.Trace = fmt.Sprintf("%09d", env.Control)
	now := s.d.Now()
	segs := rcm.Segments270(q, now.Format("20060102"), now.Format("1504"))
	if issues := rcm.ValidateInquiry(segs); len(issues) > 0 {
		return nil, fault.Invalid("CoverageEligibilityRequest/%s cannot make a 270: %s", requestID, summary(issues))
	}
	env.FunctionalID, env.Version = "HS", rcm.Version270
	x270, err := rcm.Interchange(segs, env, "270").Bytes()
	if err != nil {
		return nil, fault.Invalid("%v", err)
	}
	x271, err := ch.Eligibility(ctx, x270)
	if err != nil {
		return nil, s.providerErr(ctx, name, err)
	}
	ix, err := x12.Parse(x271)
	if err != nil {
		s.d.Log.WarnContext(ctx, "clearinghouse answered an unreadable 271", "provider", name, "err", err)
		return nil, fault.Unavailable("the clearinghouse's answer is not a 271")
	}
	var a rcm.Answer
	found := false
	for _, set := range ix.Sets() {
		if set.Segments[0].E(1) == "271" {
			if a, err = rcm.Read271(set.Segments); err == nil {
				found = true
				break
			}
		}
	}
	if !found {
		return nil, fault.Unavailable("the clearinghouse's answer holds no readable 271")
	}
	m, _ := readJSON(req.Content)
	refs := rcm.Refs{Request: "CoverageEligibilityRequest/" + requestID, Patient: refOf(m, "patient"), Insurer: refOf(m, "insurer"),
		Provider: refOf(m, "provider"), Coverage: focalCoverage(m)}
	body, err := json.Marshal(rcm.Response(a, refs, now))
	if err != nil {
		return nil, err
	}
	// The answer is stored as the caller; it is theirs to keep.
	res, _, err := s.d.FHIR.Create(context.WithoutCancel(ctx), p, "CoverageEligibilityResponse", body, "")
	if err != nil {
		return nil, err
	}
	return res.Content, nil
}

// ClaimInput is the SDK's validate and submit parameters.
type ClaimInput struct {
	CMS1500 *rcm.CMS1500 `json:"cms1500"`
	// ClaimID names a stored FHIR Claim to use instead of the form (Ward's
	// addition: the SDK sends cms1500).
	ClaimID   string `json:"claimId"`
	Submitter string `json:"submitterOrganizationName"`
	PayerID   string `json:"payerId"`
	TestMode  bool   `json:"testMode"`
}

// ValidationError is one entry of the SDK's errors: field (the FHIR
// element), value, code, description, location (loop and element).
type ValidationError struct {
	Field       string `json:"field"`
	Value       string `json:"value,omitempty"`
	Code        string `json:"code"`
	Description string `json:"description"`
	Location    string `json:"location"`
	Loop        string `json:"loop"`
	Segment     string `json:"segment"`
	Element     string `json:"element"`
}

// Validation is the SDK's RcmValidateProfessionalClaimResponse.
type Validation struct {
	Errors     []ValidationError `json:"errors"`
	Meta       map[string]string `json:"meta"`
	EditStatus string            `json:"editStatus"`
}

type built struct {
	claim  []byte // the FHIR Claim, contained resources and all
	stored string // the Claim's id when it was given by claimId
	prof   rcm.Professional
	segs   []rcm.Seg
	issues []rcm.Issue
}

// build turns the form into the FHIR Claim, the 837P's data and its issues.
func (s *RCM) build(ctx context.Context, p auth.Principal, in ClaimInput, submitter string) (built, error) {
	if strings.TrimSpace(in.Submitter) == "" {
		return built{}, fault.Invalid("submitterOrganizationName is required")
	}
	var b built
	found := true
	now := s.d.Now()
	switch {
	case in.CMS1500 != nil && in.ClaimID != "":
		return built{}, fault.Invalid("give cms1500 or claimId, not both")
	case in.ClaimID != "":
		// A FHIR Claim already stored: its references are read as the
		// caller; its insurer is the payer.
		r, err := s.d.FHIR.Read(ctx, p, "Claim", in.ClaimID)
		if err != nil {
			return built{}, err
		}
		b.claim, b.stored = r.Content, r.ID
	case in.CMS1500 != nil:
		if strings.TrimSpace(in.PayerID) == "" {
			return built{}, fault.Invalid("payerId is required")
		}
		payer, ok, err := s.payerByID(ctx, p, in.PayerID)
		if err != nil {
			return built{}, err
		}
		found = ok
		if b.claim, err = rcm.ClaimFromCMS1500(*in.CMS1500, in.PayerID, payer, now); err != nil {
			return built{}, fault.Invalid("%v", err)
		}
	default:
		return built{}, fault.Invalid("cms1500 is required (or claimId, the id of a stored FHIR Claim)")
	}
	prof, err := rcm.FromFHIR(ctx, b.claim, s.resolver(p))
	if err != nil {
		return built{}, referenceErr(err)
	}
	if prof.Payer.NPI.Val == "" && in.PayerID != "" {
		prof.Payer.NPI = rcm.V{Val: in.PayerID, Src: "payerId"}
	}
	prof.Submitter = rcm.Provider{Name: rcm.Name{Last: rcm.V{Val: in.Submitter, Src: "submitterOrganizationName"}},
		NPI: rcm.V{Val: submitter, Src: "secret " + SecretSubmitterID}, Contact: rcm.V{Val: in.Submitter, Src: "submitterOrganizationName"},
		Phone: prof.Billing.Phone}
	prof.Receiver = rcm.Provider{Name: rcm.Name{Last: prof.Payer.Name.Last}, NPI: prof.Payer.NPI}
	b.prof = prof
	b.segs = rcm.Segments837P(prof, fmt.Sprintf("%d", now.UnixNano()%1000000000), now.Format("20060102"), now.Format("1504"))
	b.issues = rcm.Validate(b.segs)
	if !found {
		b.issues = append(b.issues, rcm.Issue{Loop: "2010BB", Segment: "NM1", Element: "NM103", Src: "payerId", Value: in.PayerID, Code: "payer",
			Message: "no payer Organization (type pay) with this id in the project; create it, or see rcm.listPayers"})
	}
	return b, nil
}

// Validate runs rcm.validateProfessionalClaim.
func (s *RCM) Validate(ctx context.Context, p auth.Principal, in ClaimInput) (Validation, error) {
	_, _, submitter, err := s.clearinghouse(ctx, p)
	if err != nil {
		return Validation{}, err
	}
	b, err := s.build(ctx, p, in, submitter)
	if err != nil {
		return Validation{}, err
	}
	out := Validation{Errors: []ValidationError{}, Meta: map[string]string{"submitterId": submitter, "senderId": submitter,
		"traceId": fmt.Sprintf("%d", s.d.Now().UnixNano()), "applicationMode": "production"}, EditStatus: "SUCCESS"}
	for _, i := range b.issues {
		out.Errors = append(out.Errors, ValidationError{Field: i.Src, Value: i.Value, Code: i.Code, Description: i.Message,
			Location: i.Location(), Loop: i.Loop, Segment: i.Segment, Element: i.Element})
	}
	if len(out.Errors) > 0 {
		out.EditStatus = "ERROR"
	}
	return out, nil
}

// Submit runs rcm.submitProfessionalClaim: a valid claim is stored as a
// FHIR Claim (as the caller) before anything leaves Ward, sent as an 837P
// (not in testMode), and its 277CA, when one comes back at once, stored
// as a ClaimResponse. It returns the Claim.
func (s *RCM) Submit(ctx context.Context, p auth.Principal, in ClaimInput) ([]byte, error) {
	name, ch, submitter, err := s.clearinghouse(ctx, p)
	if err != nil {
		return nil, err
	}
	b, err := s.build(ctx, p, in, submitter)
	if err != nil {
		return nil, err
	}
	if len(b.issues) > 0 {
		return nil, fault.Invalid("the claim is not a valid 837P: %s", summary(b.issues))
	}
	env := s.envelope(submitter, b.prof.Payer.NPI.Val, in.TestMode)
	x837, err := rcm.Interchange837P(b.segs, env).Bytes()
	if err != nil {
		return nil, fault.Invalid("%v", err)
	}
	m, _ := readJSON(b.claim)
	ids, _ := m["identifier"].([]any)
	m["identifier"] = append(ids, map[string]any{"system": "urn:ward:x12:isa13", "value": fmt.Sprintf("%09d", env.Control)})
	meta, _ := m["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	tags, _ := meta["tag"].([]any)
	tagged := false
	for _, t := range tags {
		tm, _ := t.(map[string]any)
		tagged = tagged || tm["system"] == "urn:ward:clearinghouse" && tm["code"] == name
	}
	if !tagged {
		meta["tag"] = append(tags, map[string]any{"system": "urn:ward:clearinghouse", "code": name})
	}
	m["meta"] = meta
	body, _ := json.Marshal(m)
	// The claim is on the record before anything leaves Ward.
	var claim fhir.Resource
	if b.stored != "" {
		claim, _, err = s.d.FHIR.Update(ctx, p, "Claim", b.stored, body, "")
	} else {
		claim, _, err = s.d.FHIR.Create(ctx, p, "Claim", body, "")
	}
	if err != nil {
		return nil, err
	}
	if in.TestMode {
		return claim.Content, nil
	}
	// Sent is sent: record what comes back even if the caller hangs up.
	ctx = context.WithoutCancel(ctx)
	ack, ref, err := ch.Submit(ctx, x837)
	if err != nil {
		if errors.Is(err, ErrRefused) {
			return nil, fault.Invalid("Claim/%s is stored; the clearinghouse (%s) refused it: %v", claim.ID, name, err)
		}
		s.d.Log.WarnContext(ctx, "clearinghouse failed", "provider", name, "claim", claim.ID, "err", err)
		return nil, fault.Unavailable("Claim/%s is stored but the clearinghouse (%s) did not answer; submit it again with claimId %q", claim.ID, name, claim.ID)
	}
	m, _ = readJSON(claim.Content)
	if ref != "" {
		ids, _ := m["identifier"].([]any)
		m["identifier"] = append(ids, map[string]any{"system": "urn:ward:clearinghouse:" + name, "value": ref})
	}
	if ack != nil {
		if err := s.acknowledge(ctx, p, claim.ID, ack, m); err != nil {
			s.d.Log.WarnContext(ctx, "clearinghouse acknowledgment not recorded", "provider", name, "claim", claim.ID, "err", err)
		}
	}
	body, _ = json.Marshal(m)
	updated, _, err := s.d.FHIR.Update(ctx, p, "Claim", claim.ID, body, "")
	if err != nil {
		return nil, err
	}
	return updated.Content, nil
}

// acknowledge stores a 277CA as ClaimResponses and notes their outcome on
// the claim (m).
func (s *RCM) acknowledge(ctx context.Context, p auth.Principal, claimID string, ack []byte, m map[string]any) error {
	ix, err := x12.Parse(ack)
	if err != nil {
		return err
	}
	for _, set := range ix.Sets() {
		acks, err := rcm.Read277CA(set.Segments)
		if err != nil {
			return err
		}
		for _, a := range acks {
			// The claim's patient and payer are contained in it: the
			// response names them by display and the claim by reference.
			cr := rcm.ClaimResponse(a, "Claim/"+claimID, "", "", "", s.d.Now())
			cr["patient"] = map[string]any{"display": "the patient of Claim/" + claimID}
			cr["insurer"] = map[string]any{"display": "the payer of Claim/" + claimID}
			body, _ := json.Marshal(cr)
			res, _, err := s.d.FHIR.Create(ctx, p, "ClaimResponse", body, "")
			if err != nil {
				return err
			}
			ext, _ := m["extension"].([]any)
			m["extension"] = append(ext, map[string]any{"url": "urn:ward:claim-response", "valueReference": map[string]any{"reference": "ClaimResponse/" + res.ID}})
		}
	}
	return nil
}

func (s *RCM) providerErr(ctx context.Context, name string, err error) error {
	if errors.Is(err, ErrRefused) {
		return fault.Invalid("the clearinghouse (%s) refused: %v", name, err)
	}
	s.d.Log.WarnContext(ctx, "clearinghouse failed", "provider", name, "err", err)
	return fault.Unavailable("the clearinghouse (%s) did not answer; try again later", name)
}

func summary(issues []rcm.Issue) string {
	parts := make([]string, 0, 5)
	for i, is := range issues {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(issues)-5))
			break
		}
		parts = append(parts, is.String())
	}
	return strings.Join(parts, "; ")
}

func readJSON(b []byte) (map[string]any, error) {
	var m map[string]any
	err := json.Unmarshal(b, &m)
	return m, err
}

func refOf(m map[string]any, key string) string {
	r, _ := m[key].(map[string]any)
	s, _ := r["reference"].(string)
	return s
}

func focalCoverage(m map[string]any) string {
	ins, _ := m["insurance"].([]any)
	out := ""
	for _, i := range ins {
		im, _ := i.(map[string]any)
		if c := refOf(im, "coverage"); c != "" && (out == "" || im["focal"] == true) {
			out = c
		}
	}
	return out
}
