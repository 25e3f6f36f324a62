package authorizer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

const base = "https://ward.example/fhir"

func answerJSON(extra string) string {
	now := time.Now().Unix()
	return fmt.Sprintf(`{"authPayload":{"iss":"https://idp","aud":%q,"iat":%d,"nbf":%d,"exp":%d,"isAuthorized":true,"scope":"system/*.rs"%s},"roleId":"r1"}`,
		base, now, now, now+3600, extra)
}

func TestCheck(t *testing.T) {
	now := time.Now()
	n := now.Unix()
	tests := []struct {
		name, raw, wantErr string
		check              func(Decision) bool
	}{
		{name: "accepted", raw: answerJSON(""), check: func(d Decision) bool { return d.RoleID == "r1" && d.Scopes[0] == "system/*.rs" }},
		{name: "string true", raw: strings.Replace(answerJSON(""), `"isAuthorized":true`, `"isAuthorized":"true"`, 1)},
		{name: "iamRoleARN", raw: strings.Replace(answerJSON(""), `"roleId":"r1"`, `"iamRoleARN":"arn:aws:iam::1:role/r1"`, 1), check: func(d Decision) bool { return d.RoleID == "r1" }},
		{name: "api gateway wrapped", raw: fmt.Sprintf(`{"statusCode":200,"body":%q}`, answerJSON(""))},
		{name: "patient", raw: strings.Replace(answerJSON(`,"patient":"Patient/p1"`), "system/*.rs", "patient/*.rs", 1), check: func(d Decision) bool { return d.Patient == "p1" }},
		{name: "launch_response_patient", raw: strings.Replace(answerJSON(`,"launch_response_patient":"p2"`), "system/*.rs", "patient/*.rs", 1), check: func(d Decision) bool { return d.Patient == "p2" }},
		{name: "aud array", raw: strings.Replace(answerJSON(""), fmt.Sprintf("%q", base), fmt.Sprintf(`["x",%q]`, base+"/"), 1)},
		{name: "not authorized", raw: strings.Replace(answerJSON(""), `"isAuthorized":true`, `"isAuthorized":false`, 1), wantErr: "not authorized"},
		{name: "authorized string false", raw: strings.Replace(answerJSON(""), `"isAuthorized":true`, `"isAuthorized":"false"`, 1), wantErr: "not authorized"},
		{name: "expired", raw: strings.Replace(answerJSON(""), fmt.Sprint(n+3600), fmt.Sprint(n-10), 1), wantErr: "expired"},
		{name: "not yet", raw: strings.Replace(answerJSON(""), fmt.Sprintf(`"nbf":%d`, n), fmt.Sprintf(`"nbf":%d`, n+600), 1), wantErr: "not valid before"},
		{name: "wrong aud", raw: strings.Replace(answerJSON(""), base, "https://other/fhir", 1), wantErr: "aud"},
		{name: "no scope", raw: strings.Replace(answerJSON(""), `"scope":"system/*.rs"`, `"scope":""`, 1), wantErr: "no scope"},
		{name: "bad scope", raw: strings.Replace(answerJSON(""), `system/*.rs`, `system/*.zz`, 1), wantErr: "scope"},
		{name: "only openid", raw: strings.Replace(answerJSON(""), `system/*.rs`, `openid`, 1), wantErr: "no FHIR access"},
		{name: "no role", raw: strings.Replace(answerJSON(""), `,"roleId":"r1"`, ``, 1), wantErr: "names no role"},
		{name: "unknown role", raw: strings.Replace(answerJSON(""), `"roleId":"r1"`, `"roleId":"nope"`, 1), wantErr: "does not exist"},
		{name: "patient scope without patient", raw: strings.Replace(answerJSON(""), "system/*.rs", "patient/*.rs", 1), wantErr: "patient claim"},
		{name: "no payload", raw: `{}`, wantErr: "no authPayload"},
		{name: "not json", raw: `nope`, wantErr: "not a JSON object"},
		{name: "empty", raw: ``, wantErr: "not a JSON object"},
		{name: "no exp", raw: strings.Replace(answerJSON(""), fmt.Sprintf(`"exp":%d`, n+3600), `"exp":null`, 1), wantErr: "no exp"},
		{name: "gateway 401", raw: `{"statusCode":401,"body":"{}"}`, wantErr: "status 401"},
	}
	a := New(nil, Config{RoleExists: func(_ context.Context, _, id string) (bool, error) { return id == "r1", nil }})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := a.check(context.Background(), "p", base, []byte(tt.raw), now)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil && !tt.check(d) {
				t.Fatalf("decision %+v", d)
			}
		})
	}
}

func TestCacheAndCoalescing(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	release := make(chan struct{})
	answer := answerJSON("")
	run := func(ctx context.Context, project, zambda string, in Input, _ time.Duration) ([]byte, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		if in.BearerToken == "bad" {
			return []byte(`{"authPayload":{"isAuthorized":false}}`), nil
		}
		<-release
		return []byte(answer), nil
	}
	a := New(run, Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.Decide(context.Background(), "p", "z", base, "ReadResource", "tok")
			errs <- err
		}()
	}
	// Wait until the first call is in flight, then let it answer.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		c := calls
		mu.Unlock()
		if c > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Decide(context.Background(), "p", "z", base, "SearchWithGet", "tok"); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("20 concurrent requests and a later one made %d calls, want 1", calls)
	}
	for range 2 {
		if _, err := a.Decide(context.Background(), "p", "z", base, "ReadResource", "bad"); !errors.Is(err, ErrRejected) {
			t.Fatalf("bad token: %v", err)
		}
	}
	if calls != 2 {
		t.Fatalf("a refusal is cached briefly: %d calls, want 2", calls)
	}
	if a.Stats().CacheHits.Load() < 2 {
		t.Fatalf("cache hits %d", a.Stats().CacheHits.Load())
	}
	var b strings.Builder
	if err := a.Stats().WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`ward_authorizer_decisions_total{outcome="accepted"} 1`, `ward_authorizer_decisions_total{outcome="rejected"} 1`, "ward_authorizer_calls_total 2"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
}

func TestTimeoutFailsClosed(t *testing.T) {
	run := func(ctx context.Context, project, zambda string, in Input, timeout time.Duration) ([]byte, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Second):
			return []byte(answerJSON("")), nil
		}
	}
	a := New(run, Config{Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := a.Decide(context.Background(), "p", "z", base, "ReadResource", "slow")
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("err = %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v", took)
	}
	if a.Stats().Failed.Load() != 1 {
		t.Fatal("failure not counted")
	}
}

func TestExpiryBoundsCache(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	calls := 0
	run := func(context.Context, string, string, Input, time.Duration) ([]byte, error) {
		calls++
		n := now.Unix()
		return []byte(fmt.Sprintf(`{"authPayload":{"aud":%q,"nbf":%d,"exp":%d,"isAuthorized":true,"scope":"user/*.rs"},"roleId":"r"}`, base, n, n+60)), nil
	}
	a := New(run, Config{Now: clock, TTL: time.Hour})
	for range 2 {
		if _, err := a.Decide(context.Background(), "p", "z", base, "ReadResource", "t"); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(61 * time.Second)
	if _, err := a.Decide(context.Background(), "p", "z", base, "ReadResource", "t"); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Fatalf("calls = %d: a decision must not outlive the token's exp", calls)
	}
}

func BenchmarkCachedDecision(b *testing.B) {
	a := New(func(context.Context, string, string, Input, time.Duration) ([]byte, error) {
		return []byte(answerJSON("")), nil
	}, Config{})
	ctx := context.Background()
	if _, err := a.Decide(ctx, "p", "z", base, "ReadResource", "tok"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Decide(ctx, "p", "z", base, "ReadResource", "tok"); err != nil {
			b.Fatal(err)
		}
	}
}
