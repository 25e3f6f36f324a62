package zambda

import (
	"context"
	"encoding/json"
	"testing"
)

// TestSecretWireShape: value is always present in get and set, even when
// empty (the SDK's Secret.value is a required string), and never in list.
func TestSecretWireShape(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, nil)
	wire := func(v any) string {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tc := range []struct{ name, value, want string }{
		{"EMPTY", "", `{"name":"EMPTY","value":""}`},
		{"FULL", "v", `{"name":"FULL","value":"v"}`},
	} {
		set, err := s.SetSecret(ctx, s.project, tc.name, tc.value)
		if err != nil {
			t.Fatal(err)
		}
		if got := wire(set); got != tc.want {
			t.Errorf("set %s: %s, want %s", tc.name, got, tc.want)
		}
		got, err := s.GetSecret(ctx, s.project, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if w := wire(got); w != tc.want {
			t.Errorf("get %s: %s, want %s", tc.name, w, tc.want)
		}
	}
	list, err := s.ListSecrets(ctx, s.project)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := wire(list), `[{"name":"EMPTY"},{"name":"FULL"}]`; got != want {
		t.Errorf("list: %s, want %s", got, want)
	}
	// The function sees the empty secret too.
	vals, err := s.secretValues(ctx, s.project)
	if v, ok := vals["EMPTY"]; err != nil || !ok || v != "" {
		t.Errorf("secretValues: %v %v", vals, err)
	}
}
