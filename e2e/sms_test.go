package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/wardhealth/ward/internal/provider/sms"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// twilioStandIn is a loopback stand-in for Twilio's Messages endpoint. It
// checks each request as Twilio documents it (path, basic auth, form
// fields, one part of at most 160 characters), answers the first one 503
// (Ward must retry), and then, as Twilio does, posts a signed status
// callback to the StatusCallback URL: "undelivered" for +15559999999,
// "delivered" otherwise. GET /_sent lists the accepted messages.
type twilioStandIn struct {
	t                    *testing.T
	srv                  *httptest.Server
	account, token, from string
	mu                   sync.Mutex
	sent                 []map[string]string
	requests             int
	callbacks            sync.WaitGroup
}

func newTwilioStandIn(t *testing.T) *twilioStandIn {
	tw := &twilioStandIn{t: t, account: "AC0123456789abcdef0123456789abcdef", token: "tw-auth-token-e2e", from: "+15550001111"}
	tw.srv = httptest.NewServer(http.HandlerFunc(tw.serve))
	t.Cleanup(func() { tw.callbacks.Wait(); tw.srv.Close() })
	return tw
}

func (tw *twilioStandIn) fail(w http.ResponseWriter, code int, msg string) {
	tw.t.Errorf("twilio stand-in: %s", msg)
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `{"code":%d,"message":%q,"status":400}`, code, msg)
}

func (tw *twilioStandIn) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/_sent" {
		tw.mu.Lock()
		defer tw.mu.Unlock()
		_ = json.NewEncoder(w).Encode(tw.sent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/"+tw.account+"/Messages.json" {
		tw.fail(w, 20404, "wrong method or path "+r.Method+" "+r.URL.Path)
		return
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != tw.account || pass != tw.token {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"code":20003,"message":"Authenticate","status":401}`)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		tw.fail(w, 21000, "content type "+ct)
		return
	}
	body, _ := io.ReadAll(r.Body)
	f, err := url.ParseQuery(string(body))
	if err != nil {
		tw.fail(w, 21000, "form: "+err.Error())
		return
	}
	to, msg, cb := f.Get("To"), f.Get("Body"), f.Get("StatusCallback")
	switch {
	case !strings.HasPrefix(to, "+") || len(to) < 9:
		tw.fail(w, 21211, "The 'To' number "+to+" is not a valid phone number.")
		return
	case f.Get("From") != tw.from && f.Get("MessagingServiceSid") == "":
		tw.fail(w, 21606, "The From phone number "+f.Get("From")+" is not a valid number for this account.")
		return
	case msg == "" || utf8.RuneCountInString(msg) > 160:
		tw.fail(w, 21617, fmt.Sprintf("body of %d characters is not one part", utf8.RuneCountInString(msg)))
		return
	case !strings.HasPrefix(cb, "http://127.0.0.1:"):
		tw.fail(w, 21609, "StatusCallback "+cb+" is not Ward's")
		return
	}
	tw.mu.Lock()
	tw.requests++
	first := tw.requests == 1
	sid := fmt.Sprintf("SM%032d", len(tw.sent)+1)
	if !first {
		tw.sent = append(tw.sent, map[string]string{"sid": sid, "to": to, "from": f.Get("From"), "body": msg})
	}
	tw.mu.Unlock()
	if first {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"code":20500,"message":"Service unavailable","status":503}`)
		return
	}
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"sid":%q,"status":"queued","to":%q,"body":%q}`, sid, to, msg)
	status := "delivered"
	if to == "+15559999999" {
		status = "undelivered"
	}
	tw.callbacks.Add(1)
	go func() {
		defer tw.callbacks.Done()
		form := url.Values{"MessageSid": {sid}, "SmsSid": {sid}, "MessageStatus": {status}, "SmsStatus": {status},
			"AccountSid": {tw.account}, "To": {to}, "From": {tw.from}, "ApiVersion": {"2010-04-01"}}
		if status == "undelivered" {
			form.Set("ErrorCode", "30003")
		}
		req, _ := http.NewRequest(http.MethodPost, cb, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", sms.Signature(tw.token, cb, form))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			tw.t.Errorf("status callback: %v", err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			tw.t.Errorf("status callback %s: %d", status, resp.StatusCode)
		}
	}()
}

// TestTransactionalSMSWithSDK runs e2e/sms.test.mjs: the real @oystehr/sdk's
// transactionalSMS.send and messaging.getMessagingConfig through the local
// provider, then through Twilio (the stand-in above, reached through the
// egress policy), with status callbacks, forged ones, authorization and a
// second project.
func TestTransactionalSMSWithSDK(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			tw := newTwilioStandIn(t)
			w := startWardWith(t, b, "--egress-allow", "127.0.0.1/32", "--twilio-api-url", tw.srv.URL)
			other := w.createProject(t, "other")
			nodeTest(t, "sms.test.mjs", map[string]string{
				"WARD_URL":             w.URL,
				"WARD_CLIENT_ID":       w.Admin.ClientID,
				"WARD_CLIENT_SECRET":   w.Admin.ClientSecret,
				"WARD_B_CLIENT_ID":     other.ClientID,
				"WARD_B_CLIENT_SECRET": other.ClientSecret,
				"TWILIO_URL":           tw.srv.URL,
				"TWILIO_ACCOUNT":       tw.account,
				"TWILIO_TOKEN":         tw.token,
				"TWILIO_FROM":          tw.from,
			})
			tw.mu.Lock()
			defer tw.mu.Unlock()
			if tw.requests < 2 {
				t.Fatalf("the stand-in saw %d requests", tw.requests)
			}
		})
	}
}
