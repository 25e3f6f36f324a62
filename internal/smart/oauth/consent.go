package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/fhir/search"
	"github.com/wardhealth/ward/internal/store"
)

// The steps of a sign-in after the password: a practitioner first chooses
// the patient, then everyone sees what the application asks for, naming
// that patient, and allows or denies it. Signing in never grants anything
// by itself, so Enter in the password field cannot give consent.

// pending is a sign-in between its steps, kept under a one-time
// interaction token (interactionTTL) that each step replaces.
type pending struct {
	Step    string        `json:"step"` // stepPick or stepConsent
	Grant   smartGrant    `json:"grant"`
	App     string        `json:"app"`
	Account string        `json:"account,omitempty"` // the email signed in with
	Patient patientChoice `json:"patient"`           // the patient chosen in the picker
	// Request is the authorization request, made again after "Not you?
	// Sign out" (a user's sign-in, not a developer's).
	Request *authzRequest `json:"request,omitempty"`
	// NeedPatient: the grant needs a patient in context (after a code).
	NeedPatient bool `json:"needPatient,omitempty"`
}

const (
	stepPick    = "pick"
	stepConsent = "consent"
	// pickerSize is how many patients the picker lists before asking for
	// a search.
	pickerSize = 20
)

func (p pending) page(title string) pageBase {
	return pageBase{Title: title, App: p.App, Host: redirectHost(p.Grant.RedirectURI)}
}

// afterSignIn sends a signed-in user to the patient picker when the grant
// needs a patient and the user is not one, else to the consent page.
func (s *Server) afterSignIn(w http.ResponseWriter, r *http.Request, p pending, needPatient bool) error {
	if needPatient {
		typ, id, ok := strings.Cut(p.Grant.FHIRUser, "/")
		if !ok || typ != "Patient" {
			return s.showPicker(w, r, http.StatusOK, p, "", "")
		}
		p.Grant.Patient = id
	}
	return s.showConsent(w, r, p)
}

// keep stores p under a fresh interaction token.
func (s *Server) keep(ctx context.Context, p pending) (string, error) {
	tok, err := randomToken()
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("pending sign-in: %w", err)
	}
	if err := s.store.PutOAuthCode(ctx, secretHash("interaction", tok), p.Grant.ProjectID, data, s.now().Add(interactionTTL)); err != nil {
		return "", err
	}
	return tok, nil
}

// continueAuthorize takes a picker or consent form. Deny (and Cancel)
// sends access_denied back to the application, as the sign-in page does.
func (s *Server) continueAuthorize(w http.ResponseWriter, r *http.Request) error {
	_, data, err := s.store.TakeOAuthCode(r.Context(), secretHash("interaction", r.PostForm.Get("interaction")), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return errorPage(w, http.StatusBadRequest, "This sign-in has expired or was already completed. Start again from the application.")
	}
	if err != nil {
		return err
	}
	var p pending
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("pending sign-in: %w", err)
	}
	action := r.PostForm.Get("action")
	if action == "deny" {
		redirectError(w, r, authzRequest{RedirectURI: p.Grant.RedirectURI, State: p.Grant.State}, "access_denied", "the user declined")
		return nil
	}
	switch {
	case action == "signout" && p.Request != nil:
		// Back to the sign-in page of the same request, signed out.
		if err := s.endSession(r.Context(), w, r); err != nil {
			return err
		}
		v := url.Values{}
		for _, f := range p.Request.fields() {
			if f.Value != "" {
				v.Set(f.Name, f.Value)
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, "/oauth/authorize?"+v.Encode(), http.StatusSeeOther)
		return nil
	case p.Step == stepPick && action == "search":
		return s.showPicker(w, r, http.StatusOK, p, r.PostForm.Get("q"), "")
	case p.Step == stepPick && (action == "choose" || action == ""):
		return s.choosePatient(w, r, p)
	case (p.Step == stepCode || p.Step == stepEnrol) && action == "verify":
		return s.checkCode(w, r, p)
	case p.Step == stepConsent && action == "allow":
		if err := s.rememberConsent(r.Context(), p.Grant); err != nil {
			return err
		}
		return s.finishAuthorize(w, r, p.Grant)
	}
	return errorPage(w, http.StatusBadRequest, "Unknown action. Start again from the application.")
}

// choosePatient takes the picker's answer. The user must be able to read
// the Patient they choose under their own policy.
func (s *Server) choosePatient(w http.ResponseWriter, r *http.Request, p pending) error {
	id := strings.TrimSpace(r.PostForm.Get("patient"))
	if id == "" {
		return s.showPicker(w, r, http.StatusBadRequest, p, r.PostForm.Get("q"), "Choose a patient.")
	}
	if s.fhir == nil {
		return fault.NotSupported("the FHIR API is off")
	}
	res, err := s.fhir.Read(r.Context(), userPrincipal(p.Grant), "Patient", id)
	if err != nil {
		status, msg := fault.Public(err)
		if status >= 500 {
			return err
		}
		return s.showPicker(w, r, status, p, "", "You cannot open that patient: "+msg+".")
	}
	p.Grant.Patient = id
	p.Patient = describePatient(id, res.Content)
	return s.showConsent(w, r, p)
}

// showPicker lists the patients the user may search, a page at a time,
// narrowed by query (name, identifier or birth date).
func (s *Server) showPicker(w http.ResponseWriter, r *http.Request, status int, p pending, query, problem string) error {
	p.Step = stepPick
	tok, err := s.keep(r.Context(), p)
	if err != nil {
		return err
	}
	query = strings.TrimSpace(query)
	page := pickerPageData{pageBase: p.page("Choose a patient"), Interaction: tok, Error: problem, Query: query,
		Account: p.Account, SignOut: p.Request != nil}
	page.Patients, page.More = s.findPatients(r.Context(), p.Grant, query)
	return render(w, status, "picker", p.Grant.RedirectURI, page)
}

// findPatients searches Patients as the user; a failed search shows an
// empty list (the user may have no right to search).
func (s *Server) findPatients(ctx context.Context, g smartGrant, query string) ([]patientChoice, bool) {
	if s.fhir == nil {
		return nil, false
	}
	v := url.Values{"_count": {strconv.Itoa(pickerSize + 1)}, "_sort": {"name"}}
	// _filter's strings are quoted: drop what would end them.
	q := strings.NewReplacer(`"`, "", `\`, "").Replace(query)
	if len(q) > 100 {
		q = q[:100]
	}
	if q != "" {
		f := fmt.Sprintf(`name co "%s" or identifier eq "%s"`, q, q)
		if _, err := time.Parse(time.DateOnly, q); err == nil {
			f += " or birthdate eq " + q
		}
		v.Set("_filter", f)
	}
	sq, err := search.ParseQuery("Patient", v, false)
	if err != nil {
		s.log.DebugContext(ctx, "patient picker query", "err", err)
		return nil, false
	}
	res, err := s.fhir.Search(ctx, userPrincipal(g), sq)
	if err != nil {
		s.log.DebugContext(ctx, "patient picker search", "err", err)
		return nil, false
	}
	var out []patientChoice
	for _, m := range res.Matches {
		out = append(out, describePatient(m.ID, m.Content))
	}
	if len(out) > pickerSize {
		return out[:pickerSize], true
	}
	return out, false
}

// describePatient is how the picker and the consent page name a patient:
// name, then birth date and first identifier; the id only when there is
// nothing else to tell patients apart.
func describePatient(id string, content []byte) patientChoice {
	var p struct {
		Name []struct {
			Text   string   `json:"text"`
			Family string   `json:"family"`
			Given  []string `json:"given"`
		} `json:"name"`
		BirthDate  string `json:"birthDate"`
		Identifier []struct {
			Type struct {
				Text   string `json:"text"`
				Coding []struct {
					Code, Display string
				} `json:"coding"`
			} `json:"type"`
			Value string `json:"value"`
		} `json:"identifier"`
	}
	_ = json.Unmarshal(content, &p) // a resource Ward stored: valid JSON
	c := patientChoice{ID: id}
	if len(p.Name) > 0 {
		n := p.Name[0]
		c.Name = n.Text
		if c.Name == "" {
			c.Name = strings.TrimSpace(strings.Join(append(append([]string{}, n.Given...), n.Family), " "))
		}
	}
	var detail []string
	if p.BirthDate != "" {
		born := p.BirthDate
		if t, err := time.Parse(time.DateOnly, born); err == nil {
			born = t.Format("2 January 2006")
		}
		detail = append(detail, "born "+born)
	}
	for _, idf := range p.Identifier {
		if idf.Value == "" {
			continue
		}
		label := idf.Type.Text
		for _, cd := range idf.Type.Coding {
			if label == "" {
				label = cd.Display
			}
			if label == "" {
				label = cd.Code
			}
		}
		if label == "" {
			label = "identifier"
		}
		detail = append(detail, label+" "+idf.Value)
		break
	}
	if c.Name == "" {
		c.Name = "Unnamed patient"
		if len(detail) == 0 {
			detail = append(detail, "record "+id)
		}
	}
	c.Detail = capitalize(strings.Join(detail, " · "))
	return c
}

// showConsent shows what the application asks for, in words, naming the
// chosen patient, with Deny first: the safe default.
func (s *Server) showConsent(w http.ResponseWriter, r *http.Request, p pending) error {
	if p.Grant.Developer && p.Grant.ClientID == ConsoleClientID {
		// Ward's own console asks for nothing beyond the sign-in.
		return s.finishAuthorize(w, r, p.Grant)
	}
	// The same application asking for no more than the user allowed it.
	if ok, err := s.consented(r.Context(), p.Grant); err != nil || ok {
		if err != nil {
			return err
		}
		return s.finishAuthorize(w, r, p.Grant)
	}
	p.Step = stepConsent
	tok, err := s.keep(r.Context(), p)
	if err != nil {
		return err
	}
	g := p.Grant
	page := consentPageData{pageBase: p.page("Allow access"), Interaction: tok, Account: p.Account, SignOut: p.Request != nil,
		Patient: p.Patient.Name, PatientDetail: p.Patient.Detail}
	switch {
	case g.Developer:
		page.Heading = "Allow " + p.App + " to act as you?"
		page.Items = []consentItem{{Text: "Use Ward as you, in the projects you belong to, with your permissions there"}}
		if g.has("openid") {
			page.Items = append(page.Items, consentItem{Text: "Know who you are: your account", Scopes: "openid"})
		}
	case p.Patient.ID != "":
		page.Heading = "Allow " + p.App + " to access " + p.Patient.Name + "'s records?"
		page.Items = describeScopes(g.Scopes, p.Patient.Name)
	case g.Patient != "":
		page.Heading = "Allow " + p.App + " to access your health records?"
		page.Items = describeScopes(g.Scopes, "")
	default:
		page.Heading = "Allow " + p.App + " to use your account?"
		page.Items = describeScopes(g.Scopes, "")
	}
	switch {
	case g.has("offline_access"):
		page.Stay = fmt.Sprintf("Staying connected ends %d days after %s last uses it. To end it sooner, withdraw %s "+
			"on your list of applications at %s/oauth/apps.", int(offlineTTL.Hours()/24), p.App, p.App, s.cfg.PublicURL)
	case g.has("online_access"):
		page.Stay = fmt.Sprintf("Staying connected ends when you stop using %s, at most %d hours later.", p.App, int(onlineTTL.Hours()))
	}
	return render(w, http.StatusOK, "consent", g.RedirectURI, page)
}
