package auth

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestIntrospection(t *testing.T) {
	f := newFixture(t)
	dev := Principal{Kind: KindDeveloper, ID: "dev-1", ClientID: "app-1"}
	cases := []struct {
		name   string
		p      Principal
		active bool
		want   string
	}{
		{"inactive hides everything", m2m(), false, `{"active":false}`},
		{"m2m", m2m(), true, `{"active":true,"token_type":"Bearer","scope":"system/*.rs","client_id":"client-1",
			"exp":1772370000,"iat":1772366400,"sub":"m2m-1","aud":"https://ward.example/api","iss":"https://ward.example",
			"jti":"JTI","kind":"m2m","project":"proj-1"}`},
		{"developer: no project, empty scope", dev, true, `{"active":true,"token_type":"Bearer","scope":"","client_id":"app-1",
			"exp":1772370000,"iat":1772366400,"sub":"dev-1","aud":"https://ward.example/api","iss":"https://ward.example",
			"jti":"JTI","kind":"developer"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Introspect what Verify returns, as the endpoint does.
			tok := f.issue(t, c.p, time.Hour)
			p, err := f.verifier.Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(Introspection(p, testIssuer, c.active))
			if err != nil {
				t.Fatal(err)
			}
			var gotV, wantV map[string]any
			if err := json.Unmarshal(got, &gotV); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(c.want), &wantV); err != nil {
				t.Fatal(err)
			}
			if _, ok := wantV["jti"]; ok {
				wantV["jti"] = p.TokenID
			}
			if !reflect.DeepEqual(gotV, wantV) {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}
