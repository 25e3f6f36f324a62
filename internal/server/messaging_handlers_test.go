package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/provider/sms"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store"
)

// newSMSTestServer is a test server with transactional SMS on the local
// provider; every project's secrets hold only a Twilio auth token
// (testTwilioToken), enough to sign status callbacks.
func newSMSTestServer(t testing.TB) *testServer {
	return newTestServerWith(t, nil, func(st *store.Store, _ *seal.Sealer, d *Deps) {
		svc := sms.New(sms.Config{PublicURL: testURL}, sms.Deps{
			FHIR: d.FHIR.Service(),
			Providers: func(ctx context.Context, projectID string) (map[string]string, error) {
				p, err := d.IAM.GetProject(ctx, projectID)
				return p.Providers, err
			},
			Secret: func(_ context.Context, _, name string) (string, bool, error) {
				return testTwilioToken, name == sms.SecretAuthToken, nil
			},
			HTTP: http.DefaultClient,
			Log:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		d.SMS = svc
		d.Messaging = []MessagingConfig{{Key: "transactionalSMSConfig", Info: svc.Info}}
	})
}

const testTwilioToken = "test-twilio-token"

// limitedToken is the token of an M2M client holding one role of rules.
func (ts *testServer) limitedToken(t *testing.T, name, rules string) string {
	t.Helper()
	st, role := ts.do(t, "POST", "/v1/iam/role", ts.token, `{"name":"`+name+`","accessPolicy":{"rule":`+rules+`}}`)
	if st != 201 && st != 200 {
		t.Fatalf("role: %d %v", st, role)
	}
	st, m2m := ts.do(t, "POST", "/v1/m2m", ts.token, `{"name":"`+name+`","roles":["`+role["id"].(string)+`"]}`)
	if st != 201 && st != 200 {
		t.Fatalf("m2m: %d %v", st, m2m)
	}
	st, sec := ts.do(t, "POST", "/v1/m2m/"+m2m["id"].(string)+"/rotate-secret", ts.token, "")
	if st != 200 {
		t.Fatalf("rotate: %d %v", st, sec)
	}
	return ts.clientToken(t, m2m["clientId"].(string), sec["secret"].(string))
}

func TestMessagingAuthorization(t *testing.T) {
	ts := newSMSTestServer(t)
	ctx := t.Context()
	_, pat := ts.do(t, "POST", "/fhir/Patient", ts.token, `{"resourceType":"Patient","telecom":[{"system":"phone","use":"mobile","value":"+15551234567"}]}`)
	_, bare := ts.do(t, "POST", "/fhir/Patient", ts.token, `{"resourceType":"Patient"}`)
	// A patient of another project, with a mobile number.
	if err := ts.st.CreateProject(ctx, store.Project{ID: "other-project", Name: "other", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	foreign, err := ts.srv.fhir.Service().SystemCreate(ctx, "other-project", []byte(`{"resourceType":"Patient","telecom":[{"system":"sms","value":"+15551234567"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	noSMS := ts.limitedToken(t, "no-sms", `[{"resource":"FHIR:*","action":["FHIR:*"],"effect":"Allow"}]`)
	sender := ts.limitedToken(t, "sender", `[{"resource":"Messaging:TransactionalSMS","action":["Messaging:SendTransactionalSMS"],"effect":"Allow"},
		{"resource":"FHIR:Communication:*","action":["FHIR:Create"],"effect":"Allow"}]`)
	send := func(ref string) string { return `{"resource":"` + ref + `","message":"hello"}` }
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		msg                             string
	}{
		{"admin sends", "POST", "/v1/messaging/transactional-sms/send", ts.token, send("Patient/" + pat["id"].(string)), 200, ""},
		{"no token", "POST", "/v1/messaging/transactional-sms/send", "", send("Patient/" + pat["id"].(string)), 401, ""},
		{"without the action", "POST", "/v1/messaging/transactional-sms/send", noSMS, send("Patient/" + pat["id"].(string)), 403, "Messaging:SendTransactionalSMS on Messaging:TransactionalSMS"},
		{"config without the action", "GET", "/v1/messaging/config", noSMS, "", 403, "Messaging:GetConfiguration on Messaging:Messaging"},
		{"recipient not readable", "POST", "/v1/messaging/transactional-sms/send", sender, send("Patient/" + pat["id"].(string)), 403, "FHIR:Read"},
		{"another project's patient", "POST", "/v1/messaging/transactional-sms/send", ts.token, send("Patient/" + foreign.ID), 404, ""},
		{"no mobile", "POST", "/v1/messaging/transactional-sms/send", ts.token, send("Patient/" + bare["id"].(string)), 400, "no mobile number"},
		{"not a recipient type", "POST", "/v1/messaging/transactional-sms/send", ts.token, send("Group/" + pat["id"].(string)), 400, "Patient/<id>"},
		{"path in the id", "POST", "/v1/messaging/transactional-sms/send", ts.token, send("Patient/a/_history/1"), 400, "Patient/<id>"},
		{"not JSON", "POST", "/v1/messaging/transactional-sms/send", ts.token, `{"resource":`, 400, ""},
		{"callback unsigned", "POST", "/v1/messaging/transactional-sms/status/" + ts.admin.ProjectID + "/x", "", "MessageSid=SM1&MessageStatus=delivered", 403, "X-Twilio-Signature"},
		{"config", "GET", "/v1/messaging/config", ts.token, "", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, out := ts.do(t, tc.method, tc.path, tc.token, tc.body)
			if st != tc.status {
				t.Fatalf("status %d, want %d: %v", st, tc.status, out)
			}
			if tc.msg != "" && !strings.Contains(out["message"].(string), tc.msg) {
				t.Fatalf("message %q, want it to name %q", out["message"], tc.msg)
			}
		})
	}
	// The foreign patient got no Communication in either project.
	_, found := ts.do(t, "GET", "/fhir/Communication?recipient=Patient/"+foreign.ID, ts.token, "")
	if n, _ := found["total"].(float64); n != 0 {
		t.Fatalf("a Communication names the other project's patient: %v", found)
	}
}

// BenchmarkSMSSendLocal sends through the local provider next to its peer, a
// plain FHIR create of the same Communication: the ratio is what the send
// adds (the recipient's read and the second write that settles it).
func BenchmarkSMSSendLocal(b *testing.B) {
	ts := newSMSTestServer(b)
	_, pat := ts.do(b, "POST", "/fhir/Patient", ts.token, `{"resourceType":"Patient","telecom":[{"system":"sms","value":"+15551234567"}]}`)
	ref := "Patient/" + pat["id"].(string)
	run := func(b *testing.B, path, body string) {
		for b.Loop() {
			if st, out := ts.do(b, "POST", path, ts.token, body); st != 200 && st != 201 {
				b.Fatalf("%d %v", st, out)
			}
		}
	}
	b.Run("send", func(b *testing.B) {
		run(b, "/v1/messaging/transactional-sms/send", `{"resource":"`+ref+`","message":"Your appointment is tomorrow at 9."}`)
	})
	b.Run("peer=fhir-create", func(b *testing.B) {
		run(b, "/fhir/Communication", `{"resourceType":"Communication","status":"completed","recipient":[{"reference":"`+ref+`"}],"payload":[{"contentString":"Your appointment is tomorrow at 9."}]}`)
	})
}

// TestSMSStatusCallbackHostile: only a callback signed with the project's
// token, for an SMS Communication of that project sent through Twilio,
// changes anything.
func TestSMSStatusCallbackHostile(t *testing.T) {
	ts := newSMSTestServer(t)
	ctx := t.Context()
	pid := ts.admin.ProjectID
	_, ours := ts.do(t, "POST", "/fhir/Communication", ts.token, `{"resourceType":"Communication","status":"in-progress","meta":{"tag":[{"system":"urn:ward:sms","code":"twilio"}]}}`)
	_, plain := ts.do(t, "POST", "/fhir/Communication", ts.token, `{"resourceType":"Communication","status":"in-progress"}`)
	_, local := ts.do(t, "POST", "/fhir/Communication", ts.token, `{"resourceType":"Communication","status":"in-progress","meta":{"tag":[{"system":"urn:ward:sms","code":"local"}]}}`)
	if err := ts.st.CreateProject(ctx, store.Project{ID: "other-project", Name: "other", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	foreign, err := ts.srv.fhir.Service().SystemCreate(ctx, "other-project", []byte(`{"resourceType":"Communication","status":"in-progress","meta":{"tag":[{"system":"urn:ward:sms","code":"twilio"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	post := func(project, comm, body, sig string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", ts.URL+"/v1/messaging/transactional-sms/status/"+project+"/"+comm, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", sig)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		return res.StatusCode, decodeMap(res)
	}
	// sign signs as Twilio would, over the URL Ward gave it.
	sign := func(project, comm, body string) string {
		form, _ := url.ParseQuery(body)
		return sms.Signature(testTwilioToken, testURL+"/v1/messaging/transactional-sms/status/"+project+"/"+comm, form)
	}
	delivered := "MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003"
	id := ours["id"].(string)
	for _, tc := range []struct {
		name, project, comm, body, sig string
		status                         int
	}{
		{"unsigned", pid, id, delivered, "", 403},
		{"signed with another token", pid, id, delivered, sms.Signature("other", testURL+"/v1/messaging/transactional-sms/status/"+pid+"/"+id, url.Values{}), 403},
		{"signature of another communication", pid, id, delivered, sign(pid, plain["id"].(string), delivered), 403},
		{"body changed after signing", pid, id, "MessageSid=SM1&MessageStatus=delivered", sign(pid, id, delivered), 403},
		{"not an SMS", pid, plain["id"].(string), delivered, sign(pid, plain["id"].(string), delivered), 404},
		{"an SMS of the local provider", pid, local["id"].(string), delivered, sign(pid, local["id"].(string), delivered), 404},
		{"another project's communication", pid, foreign.ID, delivered, sign(pid, foreign.ID, delivered), 404},
		{"unknown status", pid, id, "MessageSid=SM1&MessageStatus=exploded", sign(pid, id, "MessageSid=SM1&MessageStatus=exploded"), 400},
		{"no such communication", pid, "nope", delivered, sign(pid, "nope", delivered), 404},
		{"signed", pid, id, delivered, sign(pid, id, delivered), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st, out := post(tc.project, tc.comm, tc.body, tc.sig); st != tc.status {
				t.Fatalf("status %d, want %d: %v", st, tc.status, out)
			}
		})
	}
	for _, c := range []struct{ id, want string }{{id, "not-done"}, {plain["id"].(string), "in-progress"}, {local["id"].(string), "in-progress"}} {
		if _, got := ts.do(t, "GET", "/fhir/Communication/"+c.id, ts.token, ""); got["status"] != c.want {
			t.Errorf("Communication/%s status %v, want %s", c.id, got["status"], c.want)
		}
	}
	// A later "delivered" does not undo the failure.
	ok := "MessageSid=SM2&MessageStatus=delivered"
	if st, _ := post(pid, id, ok, sign(pid, id, ok)); st != 200 {
		t.Fatalf("delivered: %d", st)
	}
	if _, got := ts.do(t, "GET", "/fhir/Communication/"+id, ts.token, ""); got["status"] != "not-done" {
		t.Fatalf("status %v after a late delivered", got["status"])
	}
	if r, _ := ts.srv.fhir.Service().Store().GetResource(ctx, "other-project", "Communication", foreign.ID); !strings.Contains(string(r.Content), `"in-progress"`) {
		t.Fatalf("the other project's communication changed: %s", r.Content)
	}
}
