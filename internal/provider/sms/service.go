package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/provider"
	"github.com/wardhealth/ward/internal/store"
)

// The project secrets a Twilio provider reads (docs/providers.md).
const (
	SecretAccountSID = "TWILIO_ACCOUNT_SID"
	SecretAuthToken  = "TWILIO_AUTH_TOKEN"
	SecretFrom       = "TWILIO_FROM_NUMBER"
	SecretService    = "TWILIO_MESSAGING_SERVICE_SID"
)

// MaxMessage bounds a message: Twilio's own limit on one Body is 1600
// characters, and more than ten parts is no longer a text message.
const MaxMessage = 1600

// TagSystem tags the Communications this service records (code: the
// provider), so a status callback only ever touches one of them.
const TagSystem = "urn:ward:sms"

// FHIR is what the service needs of the FHIR API: reads and creates as the
// caller (their policy applies), status changes as Ward.
type FHIR interface {
	Read(ctx context.Context, p auth.Principal, typ, id string) (fhir.Resource, error)
	Create(ctx context.Context, p auth.Principal, typ string, body []byte, ifNoneExist string) (fhir.Resource, bool, error)
	SystemUpdate(ctx context.Context, projectID, typ, id string, mutate func(m map[string]any) error) (fhir.Resource, error)
}

// Config is the service's tunables.
type Config struct {
	PublicURL string // where Twilio's status callbacks reach Ward
	TwilioURL string // DefaultTwilioURL unless set
}

// Deps are what the service calls.
type Deps struct {
	FHIR FHIR
	// Providers returns the project's provider choices (service -> name).
	Providers func(ctx context.Context, projectID string) (map[string]string, error)
	// Secret returns a project secret's value; ok false when it is not set.
	Secret func(ctx context.Context, projectID, name string) (value string, ok bool, err error)
	HTTP   *http.Client // the egress policy's client
	Log    *slog.Logger
	Now    func() time.Time
}

// Service sends transactional SMS.
type Service struct {
	cfg Config
	d   Deps
}

// New builds the service.
func New(cfg Config, d Deps) *Service {
	if cfg.TwilioURL == "" {
		cfg.TwilioURL = DefaultTwilioURL
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{cfg: cfg, d: d}
}

// recipientTypes are the SDK's: Patient, RelatedPerson or Practitioner.
var recipientTypes = map[string]bool{"Patient": true, "RelatedPerson": true, "Practitioner": true}

// Send texts message to the resource's mobile number and returns the id of
// the Communication that records it. The caller must be able to read the
// resource and create a Communication. Errors: Invalid (bad reference,
// message, no mobile number, provider not configured or refusing),
// NotFound, Forbidden, Unavailable (the provider failed after retries; the
// Communication is then failed).
func (s *Service) Send(ctx context.Context, p auth.Principal, resource, message string) (string, error) {
	typ, id, ok := strings.Cut(resource, "/")
	if !ok || !recipientTypes[typ] || id == "" || strings.Contains(id, "/") {
		return "", fault.Invalid("resource must be Patient/<id>, RelatedPerson/<id> or Practitioner/<id>, not %q", clip(resource))
	}
	if strings.TrimSpace(message) == "" {
		return "", fault.Invalid("message is empty")
	}
	if n := utf8.RuneCountInString(message); n > MaxMessage {
		return "", fault.Invalid("message is %d characters; the limit is %d", n, MaxMessage)
	}
	if !utf8.ValidString(message) {
		return "", fault.Invalid("message is not valid UTF-8")
	}
	res, err := s.d.FHIR.Read(ctx, p, typ, id)
	if err != nil {
		return "", err
	}
	to, err := MobileNumber(res.Content)
	if err != nil {
		return "", fault.Invalid("%s/%s: %v", typ, id, err)
	}
	name, sender, err := s.sender(ctx, p.ProjectID)
	if err != nil {
		return "", err
	}
	if name == provider.Local {
		// Nothing leaves Ward: the record is the whole send, one write.
		return s.record(ctx, p, resource, message, name, "completed")
	}
	comm, err := s.record(ctx, p, resource, message, name, "in-progress")
	if err != nil {
		return "", err
	}
	callback := s.CallbackURL(p.ProjectID, comm)
	var ids []string
	delivered := true
	for _, part := range Split(message) {
		sent, err := sender.Send(ctx, Message{To: to, Body: part, StatusCallback: callback})
		if err != nil {
			s.settle(context.WithoutCancel(ctx), p.ProjectID, comm, ids, StatusFailed, err.Error())
			if errors.Is(err, ErrRefused) {
				return "", fault.Invalid("Communication/%s failed: %v", comm, err)
			}
			s.d.Log.WarnContext(ctx, "sms provider failed", "provider", name, "communication", comm, "err", err)
			return "", fault.Unavailable("the SMS provider did not take the message (Communication/%s is failed); try again later", comm)
		}
		ids = append(ids, sent.ID)
		delivered = delivered && sent.Delivered
	}
	status := ""
	if delivered {
		status = "completed"
	}
	// Sent is sent: record it even if the caller has hung up meanwhile.
	if err := s.settle(context.WithoutCancel(ctx), p.ProjectID, comm, ids, status, ""); err != nil {
		return "", err
	}
	return comm, nil
}

// sender picks the project's SMS provider, reading its credentials.
func (s *Service) sender(ctx context.Context, projectID string) (string, Sender, error) {
	choices, err := s.d.Providers(ctx, projectID)
	if err != nil {
		return "", nil, err
	}
	name := choices["sms"]
	switch name {
	case "", provider.Local:
		return provider.Local, Local{}, nil
	case "twilio":
		t, err := s.twilio(ctx, projectID)
		return name, t, err
	}
	return "", nil, fault.Invalid("the project's SMS provider %q is not one this server has", name)
}

func (s *Service) twilio(ctx context.Context, projectID string) (*Twilio, error) {
	t := &Twilio{BaseURL: s.cfg.TwilioURL, Client: s.d.HTTP}
	for _, f := range []struct {
		name     string
		dst      *string
		required bool
	}{{SecretAccountSID, &t.AccountSID, true}, {SecretAuthToken, &t.AuthToken, true}, {SecretFrom, &t.From, false}, {SecretService, &t.MessagingServiceSID, false}} {
		v, ok, err := s.d.Secret(ctx, projectID, f.name)
		if err != nil {
			return nil, err
		}
		if !ok && f.required {
			return nil, fault.Invalid("the project's SMS provider is twilio but its secret %s is not set", f.name)
		}
		*f.dst = v
	}
	if t.From == "" && t.MessagingServiceSID == "" {
		return nil, fault.Invalid("the project's SMS provider is twilio but neither %s nor %s is set", SecretFrom, SecretService)
	}
	return t, nil
}

// record creates the Communication, as the caller, before anything is sent:
// a message that leaves Ward is always on the record.
func (s *Service) record(ctx context.Context, p auth.Principal, recipient, message, providerName, status string) (string, error) {
	c := map[string]any{
		"resourceType": "Communication",
		"status":       status,
		"meta":         map[string]any{"tag": []any{map[string]any{"system": TagSystem, "code": providerName}}},
		"medium": []any{map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode", "code": "SMSWRIT", "display": "SMS writing"}}}},
		"recipient": []any{map[string]any{"reference": recipient}},
		"payload":   []any{map[string]any{"contentString": message}},
		"sent":      s.d.Now().UTC().Format(time.RFC3339),
	}
	body, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("sms communication: %w", err)
	}
	res, _, err := s.d.FHIR.Create(ctx, p, "Communication", body, "")
	if err != nil {
		return "", err
	}
	return res.ID, nil
}

// settle adds the provider's message ids and, when status is set, the
// final status (reason: why it failed).
func (s *Service) settle(ctx context.Context, projectID, comm string, ids []string, status, reason string) error {
	_, err := s.update(ctx, projectID, comm, func(m map[string]any) error {
		idents, _ := m["identifier"].([]any)
		for _, id := range ids {
			idents = append(idents, map[string]any{"system": TagSystem + ":message-id", "value": id})
		}
		if len(idents) > 0 {
			m["identifier"] = idents
		}
		if status != "" {
			setStatus(m, status, reason)
		}
		return nil
	})
	return err
}

// StatusFailed is a send that did not reach the phone: R4's event-status
// has no "failed"; "not-done" (with statusReason saying why) is the code for
// an event that did not happen.
const StatusFailed = "not-done"

// setStatus applies a final status; failed is never undone, and completed
// does not replace it (one failed part fails the message).
func setStatus(m map[string]any, status, reason string) {
	if m["status"] == StatusFailed {
		return
	}
	m["status"] = status
	if status == StatusFailed && reason != "" {
		m["statusReason"] = map[string]any{"text": clip(reason)}
	}
}

// update retries a system update that lost a race with another (a status
// callback arriving while the send is being recorded).
func (s *Service) update(ctx context.Context, projectID, comm string, mutate func(map[string]any) error) (fhir.Resource, error) {
	var err error
	for i := 0; i < 5; i++ {
		var r fhir.Resource
		r, err = s.d.FHIR.SystemUpdate(ctx, projectID, "Communication", comm, mutate)
		if errors.Is(err, store.ErrNotFound) {
			return r, fault.NotFound("Communication/%s is not known", comm)
		}
		if !errors.Is(err, fault.ErrPrecondition) && !errors.Is(err, fault.ErrConflict) {
			return r, err
		}
	}
	return fhir.Resource{}, err
}

// CallbackURL is where Twilio reports a Communication's parts.
func (s *Service) CallbackURL(projectID, comm string) string {
	return s.cfg.PublicURL + "/v1/messaging/transactional-sms/status/" + url.PathEscape(projectID) + "/" + url.PathEscape(comm)
}

// Callback applies a Twilio status callback to the Communication it names.
// The signature is checked with the project's auth token over the URL
// Ward gave Twilio. Errors: Forbidden (no token, bad signature: one answer
// for both, so nothing is learnt of the project), Invalid (bad body),
// NotFound (no such SMS Communication).
func (s *Service) Callback(ctx context.Context, projectID, comm, signature string, body []byte) error {
	token, ok, err := s.d.Secret(ctx, projectID, SecretAuthToken)
	if err != nil && !errors.Is(err, fault.ErrNotFound) {
		return err
	}
	form, perr := url.ParseQuery(string(body))
	if !ok || perr != nil || !VerifySignature(token, s.CallbackURL(projectID, comm), form, signature) {
		return fault.Forbidden("the status callback's X-Twilio-Signature does not verify")
	}
	cb, _, err := ParseCallback(body)
	if err != nil {
		return fault.Invalid("%v", err)
	}
	final := cb.Final()
	_, err = s.update(ctx, projectID, comm, func(m map[string]any) error {
		if !tagged(m, "twilio") {
			return fault.NotFound("Communication/%s is not an SMS sent through Twilio", comm)
		}
		if final != "" {
			reason := ""
			if final == StatusFailed {
				reason = "twilio: " + cb.Status
				if cb.ErrorCode != "" {
					reason += " (error " + cb.ErrorCode + ")"
				}
			}
			setStatus(m, final, reason)
		}
		return nil
	})
	return err
}

func tagged(m map[string]any, code string) bool {
	meta, _ := m["meta"].(map[string]any)
	tags, _ := meta["tag"].([]any)
	for _, t := range tags {
		tm, _ := t.(map[string]any)
		if tm["system"] == TagSystem && tm["code"] == code {
			return true
		}
	}
	return false
}

// Info reports the project's SMS provider for messaging.getMessagingConfig;
// a provider chosen but missing credentials is reported not configured.
func (s *Service) Info(ctx context.Context, projectID string) (provider.Info, error) {
	choices, err := s.d.Providers(ctx, projectID)
	if err != nil {
		return provider.Info{}, err
	}
	name := choices["sms"]
	if name == "" || name == provider.Local {
		return provider.Info{Provider: provider.Local, Configured: true}, nil
	}
	t, err := s.twilio(ctx, projectID)
	if errors.Is(err, fault.ErrInvalid) {
		return provider.Info{Provider: name}, nil
	}
	if err != nil {
		return provider.Info{}, err
	}
	return provider.Info{Provider: name, Configured: true, PhoneNumber: t.From}, nil
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
