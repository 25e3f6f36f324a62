package zambda

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/store/storetest"
	"github.com/wardhealth/ward/internal/zambda/runtime"
)

// notRevoked is a revocation checker that revokes nothing.
type notRevoked struct{}

func (notRevoked) IsRevoked(context.Context, string) (bool, error) { return false, nil }

// TestExecutionRoleToken: each invocation of a function with an execution
// role gets a fresh token for the role's hidden M2M client, shared by every
// function with that role and living the function's timeout plus 30 s; a
// function without a role, or whose role was set to null, gets none.
func TestExecutionRoleToken(t *testing.T) {
	env := newTestEnv(t, storetest.Backends()[0], true)
	var mu sync.Mutex
	var events []event
	ts := env.replica(t, "", invokerFunc(func(_ context.Context, _ runtime.Function, inv runtime.Invocation) (runtime.Result, error) {
		var ev event
		if err := json.Unmarshal(inv.Payload, &ev); err != nil {
			t.Errorf("event: %v", err)
		}
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
		return runtime.Result{Payload: []byte(`{"statusCode":200,"body":"{}"}`)}, nil
	}))
	ctx := t.Context()
	verifier := auth.NewVerifier(func() *auth.KeyRing { return env.ring }, "http://ward.test", []string{"http://ward.test"}, notRevoked{}, env.clock.now)
	name := "worker"
	role, err := env.iam.CreateRole(ctx, env.project, iam.RoleInput{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	withRole := ts.deploy(t, `{"name":"a","runtime":"nodejs20.x","timeoutInSeconds":20,"executionRoleId":"`+role.ID+`"}`)
	sameRole := ts.deploy(t, `{"name":"b","runtime":"nodejs20.x","timeoutInSeconds":5,"executionRoleId":"`+role.ID+`"}`)
	noRole := ts.deploy(t, `{"name":"c","runtime":"nodejs20.x"}`)

	// token runs the function once and returns the principal of the token
	// its event carried ("" token: none).
	token := func(f Function) (string, auth.Principal) {
		t.Helper()
		mu.Lock()
		events = nil
		mu.Unlock()
		if _, err := ts.Execute(ctx, env.project, Call{IDOrName: f.ID, Payload: []byte("{}"), Trigger: "http"}); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(events) != 1 {
			t.Fatalf("%d invocations, want 1", len(events))
		}
		tok := events[0].AccessToken
		if tok == "" {
			return "", auth.Principal{}
		}
		p, err := verifier.Verify(ctx, tok)
		if err != nil {
			t.Fatalf("the execution-role token does not verify: %v", err)
		}
		return tok, p
	}

	client, err := env.iam.ExecutionRoleClient(ctx, env.project, role.ID)
	if err != nil {
		t.Fatal(err)
	}
	tokA, pA := token(withRole)
	if pA.Kind != auth.KindM2M || pA.ID != client.ID || pA.ClientID != client.ClientID || pA.ProjectID != env.project {
		t.Fatalf("token principal %+v, want the role's M2M client %s (%s)", pA, client.ID, client.ClientID)
	}
	if got := pA.ExpiresAt.Sub(pA.IssuedAt); got != 50*time.Second {
		t.Fatalf("a 20 s function's token lives %v, want 50 s", got)
	}
	env.clock.add(time.Second)
	tokA2, pA2 := token(withRole)
	if tokA2 == tokA || pA2.TokenID == pA.TokenID {
		t.Fatal("two invocations got the same token")
	}
	_, pB := token(sameRole)
	if pB.ID != client.ID {
		t.Fatalf("a second function with the role runs as %s, want the shared client %s", pB.ID, client.ID)
	}
	if got := pB.ExpiresAt.Sub(pB.IssuedAt); got != 35*time.Second {
		t.Fatalf("a 5 s function's token lives %v, want 35 s", got)
	}
	if tok, _ := token(noRole); tok != "" {
		t.Fatal("a function without an execution role got a token")
	}
	if _, err := ts.Update(ctx, env.project, withRole.ID, Input{ExecutionRoleID: json.RawMessage("null")}); err != nil {
		t.Fatal(err)
	}
	if tok, _ := token(withRole); tok != "" {
		t.Fatal("executionRoleId null did not remove the token")
	}
}
