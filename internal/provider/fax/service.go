package fax

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/provider"
	"github.com/wardhealth/ward/internal/provider/sms"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/z3"
)

// The project secrets the Phaxio provider reads (docs/providers.md).
const (
	SecretPhaxioKey      = "PHAXIO_API_KEY"
	SecretPhaxioSecret   = "PHAXIO_API_SECRET"
	SecretPhaxioAreaCode = "PHAXIO_AREA_CODE"
)

// On the Communication a send records.
const (
	// TagSystem tags it (code: the provider).
	TagSystem = "urn:ward:fax"
	// StatusExtension holds the provider's delivery status, as Oystehr's
	// send answer does.
	StatusExtension = "https://extensions.fhir.oystehr.com/outbound-fax-status"
	// QualityExtension holds the quality asked for.
	QualityExtension = "urn:ward:fax:quality"
)

// MaxDocument bounds a fax's document (Phaxio takes files up to 20 MB).
const MaxDocument = 20 << 20

// FHIR is what the service needs of the FHIR API: reads and creates as the
// caller, the status as Ward.
type FHIR interface {
	Read(ctx context.Context, p auth.Principal, typ, id string) (fhir.Resource, error)
	Create(ctx context.Context, p auth.Principal, typ string, body []byte, ifNoneExist string) (fhir.Resource, bool, error)
	SystemUpdate(ctx context.Context, projectID, typ, id string, mutate func(m map[string]any) error) (fhir.Resource, error)
}

// Numbers keeps the projects' onboarded numbers (the store).
type Numbers interface {
	AddFaxNumber(ctx context.Context, n store.FaxNumber) error
	FaxNumbers(ctx context.Context, projectID string) ([]store.FaxNumber, error)
	RemoveFaxNumber(ctx context.Context, projectID, number string) error
}

// Objects reads Z3 objects (the z3 service).
type Objects interface {
	Get(ctx context.Context, projectID, bucket, path string) (z3.Object, error)
}

// Config is the service's tunables.
type Config struct {
	PublicURL string // where Ward's Z3 URLs point (<public>/v1/z3/...)
	PhaxioURL string // DefaultPhaxioURL unless set
}

// Deps are what the service calls.
type Deps struct {
	FHIR    FHIR
	Numbers Numbers
	Objects Objects
	// Authorize checks the caller's policy (for Z3:GetObject on the media).
	Authorize func(ctx context.Context, p auth.Principal, action, resource string) error
	// Providers returns the project's provider choices (service -> name).
	Providers func(ctx context.Context, projectID string) (map[string]string, error)
	// Secret returns a project secret's value; ok false when it is not set.
	Secret func(ctx context.Context, projectID, name string) (value string, ok bool, err error)
	HTTP   *http.Client // the egress policy's client
	Log    *slog.Logger
	Now    func() time.Time
}

// Service answers the SDK's fax.*.
type Service struct {
	cfg Config
	d   Deps
}

// New builds the service.
func New(cfg Config, d Deps) *Service {
	if cfg.PhaxioURL == "" {
		cfg.PhaxioURL = DefaultPhaxioURL
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{cfg: cfg, d: d}
}

func (s *Service) provider(ctx context.Context, projectID string) (string, Provider, error) {
	choices, err := s.d.Providers(ctx, projectID)
	if err != nil {
		return "", nil, err
	}
	switch name := choices["fax"]; name {
	case "", provider.Local:
		return provider.Local, Local{}, nil
	case "phaxio":
		p := &Phaxio{BaseURL: s.cfg.PhaxioURL, Client: s.d.HTTP}
		for _, f := range []struct {
			name     string
			dst      *string
			required bool
		}{{SecretPhaxioKey, &p.APIKey, true}, {SecretPhaxioSecret, &p.APISecret, true}, {SecretPhaxioAreaCode, &p.AreaCode, false}} {
			v, ok, err := s.d.Secret(ctx, projectID, f.name)
			if err != nil {
				return "", nil, err
			}
			if !ok && f.required {
				return "", nil, fault.Invalid("the project's fax provider is phaxio but its secret %s is not set", f.name)
			}
			*f.dst = v
		}
		return name, p, nil
	default:
		return "", nil, fault.Invalid("the project's fax provider %q is not one this server has", name)
	}
}

// providerErr turns a provider's failure into the client's answer.
func (s *Service) providerErr(ctx context.Context, name, what string, err error) error {
	if errors.Is(err, ErrRefused) {
		return fault.Wrap(fault.ErrInvalid, err, "%s: %v", what, err)
	}
	s.d.Log.WarnContext(ctx, "fax provider failed", "provider", name, "what", what, "err", err)
	return fault.Wrap(fault.ErrUnavailable, err, "%s: the fax provider did not answer; try again later", what)
}

// Onboard is fax.onboard: the project gets a number from its provider; a
// project that has one gets it again (one number per project).
func (s *Service) Onboard(ctx context.Context, projectID string) (string, error) {
	have, err := s.d.Numbers.FaxNumbers(ctx, projectID)
	if err != nil {
		return "", err
	}
	if len(have) > 0 {
		return have[0].Number, nil
	}
	name, pr, err := s.provider(ctx, projectID)
	if err != nil {
		return "", err
	}
	number, err := pr.Provision(ctx)
	if err != nil {
		return "", s.providerErr(ctx, name, "provisioning a fax number", err)
	}
	// The number is the project's now: record it even if the caller left.
	ctx = context.WithoutCancel(ctx)
	err = s.d.Numbers.AddFaxNumber(ctx, store.FaxNumber{ProjectID: projectID, Number: number, Provider: name, CreatedAt: s.d.Now()})
	if errors.Is(err, store.ErrConflict) {
		// Another onboard won the race: give this number back, answer theirs.
		if rerr := pr.Release(ctx, number); rerr != nil {
			s.d.Log.WarnContext(ctx, "fax number bought twice, release failed", "provider", name, "number", number, "err", rerr)
		}
		have, err := s.d.Numbers.FaxNumbers(ctx, projectID)
		if err != nil || len(have) == 0 {
			return "", fault.Conflict("the project's fax number changed during onboarding; try again")
		}
		return have[0].Number, nil
	}
	if err != nil {
		return "", err
	}
	return number, nil
}

// Offboard is fax.offboard: every number of the project is released by the
// provider that holds it and forgotten. None is no error.
func (s *Service) Offboard(ctx context.Context, projectID string) error {
	have, err := s.d.Numbers.FaxNumbers(ctx, projectID)
	if err != nil {
		return err
	}
	for _, n := range have {
		name, pr, err := s.provider(ctx, projectID)
		if err != nil {
			return err
		}
		if name != n.Provider {
			return fault.Conflict("fax number %s is held by provider %q but the project now uses %q: set providers.fax back to release it", n.Number, n.Provider, name)
		}
		if err := pr.Release(ctx, n.Number); err != nil {
			return s.providerErr(ctx, name, "releasing "+n.Number, err)
		}
		if err := s.d.Numbers.RemoveFaxNumber(context.WithoutCancel(ctx), projectID, n.Number); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// Settings is fax.getConfiguration's answer, plus the provider.
type Settings struct {
	Configured bool     `json:"configured"`
	FaxNumbers []string `json:"faxNumbers"`
	Provider   string   `json:"provider"`
}

// Configuration is fax.getConfiguration: configured once a number is
// onboarded (and the provider's credentials are set).
func (s *Service) Configuration(ctx context.Context, projectID string) (Settings, error) {
	have, err := s.d.Numbers.FaxNumbers(ctx, projectID)
	if err != nil {
		return Settings{}, err
	}
	out := Settings{FaxNumbers: []string{}}
	for _, n := range have {
		out.FaxNumbers = append(out.FaxNumbers, n.Number)
	}
	name, _, err := s.provider(ctx, projectID)
	if errors.Is(err, fault.ErrInvalid) {
		choices, _ := s.d.Providers(ctx, projectID)
		out.Provider = choices["fax"]
		return out, nil
	}
	if err != nil {
		return Settings{}, err
	}
	out.Provider, out.Configured = name, len(have) > 0
	return out, nil
}

// SendInput is fax.send's body.
type SendInput struct {
	Media           string `json:"media"`
	Patient         string `json:"patient"`
	Quality         string `json:"quality"`
	Recipient       string `json:"recipient"`
	RecipientNumber string `json:"recipientNumber"`
	Sender          string `json:"sender"`
}

var (
	recipientTypes = []string{"CareTeam", "HealthcareService", "Organization", "Patient", "Practitioner", "PractitionerRole", "RelatedPerson"}
	senderTypes    = []string{"HealthcareService", "Organization", "Patient", "Practitioner", "PractitionerRole", "RelatedPerson"}
)

// Send is fax.send: it checks everything, records the Communication as the
// caller (the document, sender, recipient, patient), hands the fax to the
// provider and records the provider's status. The answer is the
// Communication as it then stands.
func (s *Service) Send(ctx context.Context, p auth.Principal, in SendInput) (json.RawMessage, error) {
	switch in.Quality {
	case "standard", "fine", "superfine":
	default:
		return nil, fault.Invalid("quality must be standard, fine or superfine")
	}
	if (in.Recipient == "") == (in.RecipientNumber == "") {
		return nil, fault.Invalid("give one of recipient or recipientNumber, not both")
	}
	if in.Media == "" {
		return nil, fault.Invalid("media is required: a Z3 URL or DocumentReference/<id>")
	}
	name, pr, err := s.provider(ctx, p.ProjectID)
	if err != nil {
		return nil, err
	}
	numbers, err := s.d.Numbers.FaxNumbers(ctx, p.ProjectID)
	if err != nil {
		return nil, err
	}
	if len(numbers) == 0 {
		return nil, fault.Invalid("the project has no fax number: fax.onboard first")
	}
	sender, err := s.party(ctx, p, "sender", in.Sender, senderTypes)
	if err != nil {
		return nil, err
	}
	from := ""
	for _, n := range faxNumbers(sender) {
		if slices.ContainsFunc(numbers, func(f store.FaxNumber) bool { return f.Number == n }) {
			from = n
			break
		}
	}
	if from == "" {
		return nil, fault.Invalid("sender %s has no telecom with system fax holding the project's fax number", in.Sender)
	}
	var to string
	recipient := map[string]any{}
	var contained []any
	if in.Recipient != "" {
		r, err := s.party(ctx, p, "recipient", in.Recipient, recipientTypes)
		if err != nil {
			return nil, err
		}
		nums := faxNumbers(r)
		if len(nums) == 0 {
			return nil, fault.Invalid("recipient %s has no telecom with system fax", in.Recipient)
		}
		to, recipient["reference"] = nums[0], in.Recipient
	} else {
		if to, err = sms.E164(in.RecipientNumber); err != nil {
			return nil, fault.Invalid("recipientNumber: %v", err)
		}
		// As Oystehr does: a contained Practitioner holds a bare number.
		contained = append(contained, map[string]any{"resourceType": "Practitioner", "id": "recipient",
			"telecom": []any{map[string]any{"system": "fax", "value": to}}})
		recipient["reference"] = "#recipient"
	}
	if in.Patient != "" {
		if _, err := s.party(ctx, p, "patient", in.Patient, []string{"Patient"}); err != nil {
			return nil, err
		}
	}
	doc, payload, err := s.media(ctx, p, in.Media, pr.NeedsBytes())
	if err != nil {
		return nil, err
	}
	status := "in-progress"
	if name == provider.Local {
		status = "completed"
	}
	c := map[string]any{
		"resourceType": "Communication",
		"status":       status,
		"meta":         map[string]any{"tag": []any{map[string]any{"system": TagSystem, "code": name}}},
		"medium": []any{map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode", "code": "FAXWRIT", "display": "telefax"}}}},
		"sender":    map[string]any{"reference": in.Sender},
		"recipient": []any{recipient},
		"payload":   []any{payload},
		"sent":      s.d.Now().UTC().Format(time.RFC3339),
		"extension": []any{
			map[string]any{"url": StatusExtension, "valueString": map[bool]string{true: "success", false: "pending"}[status == "completed"]},
			map[string]any{"url": QualityExtension, "valueCode": in.Quality},
		},
	}
	if contained != nil {
		c["contained"] = contained
	}
	if in.Patient != "" {
		c["subject"] = map[string]any{"reference": in.Patient}
	}
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("fax communication: %w", err)
	}
	res, _, err := s.d.FHIR.Create(ctx, p, "Communication", body, "")
	if err != nil {
		return nil, err
	}
	if name == provider.Local {
		return res.Content, nil
	}
	sent, sendErr := pr.Send(ctx, Fax{To: to, From: from, Quality: in.Quality, Document: doc, CallbackURL: s.CallbackURL(p.ProjectID, res.ID)})
	// What the provider said is recorded even if the caller has gone.
	final, err := s.settle(context.WithoutCancel(ctx), p.ProjectID, res.ID, sent, sendErr)
	if sendErr != nil {
		return nil, s.providerErr(ctx, name, "Communication/"+res.ID+" was not sent", sendErr)
	}
	if err != nil {
		return nil, err
	}
	return final.Content, nil
}

// settle records the provider's answer on the Communication.
func (s *Service) settle(ctx context.Context, projectID, comm string, sent Sent, sendErr error) (fhir.Resource, error) {
	return s.d.FHIR.SystemUpdate(ctx, projectID, "Communication", comm, func(m map[string]any) error {
		faxStatus := sent.Status
		switch {
		case sendErr != nil:
			m["status"], faxStatus = "not-done", "failure"
			m["statusReason"] = map[string]any{"text": clip(sendErr.Error())}
		case sent.Delivered:
			m["status"] = "completed"
		}
		if sent.ID != "" {
			m["identifier"] = []any{map[string]any{"system": TagSystem + ":id", "value": sent.ID}}
		}
		exts, _ := m["extension"].([]any)
		for _, e := range exts {
			if em, _ := e.(map[string]any); em["url"] == StatusExtension {
				em["valueString"] = faxStatus
			}
		}
		return nil
	})
}

// party reads a reference of one of types as the caller.
func (s *Service) party(ctx context.Context, p auth.Principal, what, ref string, types []string) (map[string]any, error) {
	typ, id, ok := strings.Cut(ref, "/")
	if !ok || !slices.Contains(types, typ) || id == "" || len(id) > 64 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != "" {
		return nil, fault.Invalid("%s must be a reference <type>/<id> to one of %s, not %q", what, strings.Join(types, ", "), clip(ref))
	}
	res, err := s.d.FHIR.Read(ctx, p, typ, id)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(res.Content, &m); err != nil {
		return nil, fmt.Errorf("fax %s: %w", what, err)
	}
	return m, nil
}

// faxNumbers lists a resource's fax numbers in E.164 (ones that are not
// numbers are skipped).
func faxNumbers(m map[string]any) []string {
	var out []string
	tel, _ := m["telecom"].([]any)
	for _, t := range tel {
		tm, _ := t.(map[string]any)
		v, _ := tm["value"].(string)
		if tm["system"] != "fax" || v == "" {
			continue
		}
		if n, err := sms.E164(v); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// media resolves the document: a Z3 URL (the caller needs Z3:GetObject on
// it) or DocumentReference/<id> (read as the caller; its first attachment
// is a Z3 URL or inline data). It returns the document (bytes when asked)
// and the Communication's payload.
func (s *Service) media(ctx context.Context, p auth.Principal, ref string, withBytes bool) (Document, map[string]any, error) {
	if typ, id, ok := strings.Cut(ref, "/"); ok && typ == "DocumentReference" {
		res, err := s.d.FHIR.Read(ctx, p, typ, id)
		if err != nil {
			return Document{}, nil, err
		}
		var dr struct {
			Content []struct {
				Attachment struct {
					URL, ContentType, Data, Title string
				} `json:"attachment"`
			} `json:"content"`
		}
		if err := json.Unmarshal(res.Content, &dr); err != nil || len(dr.Content) == 0 {
			return Document{}, nil, fault.Invalid("%s has no content attachment to fax", ref)
		}
		a := dr.Content[0].Attachment
		payload := map[string]any{"contentReference": map[string]any{"reference": ref}}
		if a.Data != "" {
			b, err := base64.StdEncoding.DecodeString(a.Data)
			if err != nil {
				return Document{}, nil, fault.Invalid("%s: its attachment's data is not base64", ref)
			}
			if len(b) > MaxDocument {
				return Document{}, nil, fault.Invalid("%s is larger than the fax limit of %d bytes", ref, MaxDocument)
			}
			return Document{Name: firstOf(a.Title, "document"), ContentType: a.ContentType, Size: int64(len(b)), Bytes: b}, payload, nil
		}
		if a.URL == "" {
			return Document{}, nil, fault.Invalid("%s's attachment has neither a url nor data", ref)
		}
		doc, _, err := s.z3Document(ctx, p, a.URL, withBytes)
		return doc, payload, err
	}
	return s.z3Document(ctx, p, ref, withBytes)
}

// z3Document reads a Z3 URL: <public>/v1/z3/<bucket>/<path> (Oystehr's
// form, on this server) or z3://<bucket>/<path>.
func (s *Service) z3Document(ctx context.Context, p auth.Principal, u string, withBytes bool) (Document, map[string]any, error) {
	bucket, clean, err := ParseZ3URL(s.cfg.PublicURL, u)
	if err != nil {
		return Document{}, nil, err
	}
	if err := s.d.Authorize(ctx, p, "Z3:GetObject", "Z3:"+bucket+"/"+clean); err != nil {
		return Document{}, nil, err
	}
	o, err := s.d.Objects.Get(ctx, p.ProjectID, bucket, clean)
	if err != nil {
		return Document{}, nil, err
	}
	if o.Size > MaxDocument {
		return Document{}, nil, fault.Invalid("media is %d bytes; the fax limit is %d", o.Size, MaxDocument)
	}
	doc := Document{Name: path.Base(clean), ContentType: o.ContentType, Size: o.Size}
	if withBytes {
		rc, err := o.Read(ctx, 0, -1)
		if err != nil {
			return Document{}, nil, err
		}
		defer rc.Close()
		if doc.Bytes, err = io.ReadAll(io.LimitReader(rc, MaxDocument+1)); err != nil {
			return Document{}, nil, fmt.Errorf("fax media: %w", err)
		}
	}
	att := map[string]any{"url": u, "title": doc.Name, "size": doc.Size}
	if doc.ContentType != "" {
		att["contentType"] = doc.ContentType
	}
	return doc, map[string]any{"contentAttachment": att}, nil
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// ParseZ3URL reads a Z3 URL of the server at public: public/v1/z3/<bucket>/<path>
// (Oystehr's form) or z3://<bucket>/<path>. The path is one object's, cleaned
// (never a folder, never "..").
func ParseZ3URL(public, u string) (bucket, objPath string, err error) {
	rest, ok := strings.CutPrefix(u, public+"/v1/z3/")
	if !ok {
		rest, ok = strings.CutPrefix(u, "z3://")
	}
	if !ok {
		return "", "", fault.Invalid("media must be a Z3 URL of this server (%s/v1/z3/<bucket>/<path>) or DocumentReference/<id>, not %q", public, clip(u))
	}
	bucket, raw, _ := strings.Cut(rest, "/")
	if err := z3.ValidBucket(bucket); err != nil {
		return "", "", err
	}
	clean, folder, err := z3.CleanPath(raw)
	if err != nil {
		return "", "", err
	}
	if clean == "" || folder {
		return "", "", fault.Invalid("media names a folder, not a document: %q", clip(u))
	}
	return bucket, clean, nil
}
