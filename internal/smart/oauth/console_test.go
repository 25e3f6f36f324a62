package oauth

import (
	"net/http"
	"net/url"
	"testing"
)

// The console client redirects only to the console's own callback on
// Ward's public URL: never to another host, port or path.
func TestConsoleClientRedirect(t *testing.T) {
	ts := newTestServer(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		redirect string
		want     int
	}{
		{testURL + ConsoleCallbackPath, http.StatusOK},
		{"http://evil.example" + ConsoleCallbackPath, http.StatusBadRequest},
		{"http://127.0.0.1:9999" + ConsoleCallbackPath, http.StatusBadRequest},
		{testURL + ConsoleCallbackPath + "x", http.StatusBadRequest},
		{testURL + ConsoleCallbackPath + "/../../evil", http.StatusBadRequest},
		{testURL + ConsoleCallbackPath + "?next=http://evil.example", http.StatusBadRequest},
		{"https://ward.test" + ConsoleCallbackPath, http.StatusBadRequest},
		{"", http.StatusBadRequest},
	} {
		q := url.Values{"response_type": {"code"}, "client_id": {ConsoleClientID}, "redirect_uri": {tc.redirect}, "state": {"s"},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		res, err := client.Get(ts.URL + "/oauth/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("redirect_uri %q: status %d, want %d", tc.redirect, res.StatusCode, tc.want)
		}
	}
}
