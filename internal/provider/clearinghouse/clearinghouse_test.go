package clearinghouse

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/rcm"
	"github.com/wardhealth/ward/internal/x12"
)

var now = func() time.Time { return time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC) }

func inquiry(t *testing.T, member string) []byte {
	q := rcm.Inquiry{Trace: "T1", Payer: rcm.Provider{Name: rcm.Name{Last: rcm.V{Val: "XYZ"}}, NPI: rcm.V{Val: "XYZ01"}},
		Provider:   rcm.Provider{Name: rcm.Name{Last: rcm.V{Val: "Clinic"}}, NPI: rcm.V{Val: "1234567893"}},
		Subscriber: rcm.Person{Name: rcm.Name{Last: rcm.V{Val: "Doe"}, First: rcm.V{Val: "Jane"}}, MemberID: rcm.V{Val: member}},
		Date:       rcm.V{Val: "20261201"}, ServiceType: "30"}
	b, err := rcm.Interchange(rcm.Segments270(q, "20261207", "1200"), x12.Envelope{SenderQual: "ZZ", SenderID: "WARD", ReceiverQual: "ZZ",
		ReceiverID: "XYZ01", Control: 77, Time: now(), FunctionalID: "HS", Version: rcm.Version270}, "270").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLocalEligibility(t *testing.T) {
	cov := `{"resourceType":"Coverage","status":"active","subscriberId":"M1","period":{"start":"2026-01-01"},
		"class":[{"type":{"coding":[{"code":"plan"}]},"value":"GOLD","name":"Gold PPO"}]}`
	l := Local{Now: now, Coverages: func(_ context.Context, q rcm.Inquiry) ([][]byte, error) { return [][]byte{[]byte(cov)}, nil }}
	for _, tc := range []struct {
		member string
		active bool
		reject string
	}{{"M1", true, ""}, {"M2", false, "75"}} {
		x271, err := l.Eligibility(context.Background(), inquiry(t, tc.member))
		if err != nil {
			t.Fatal(err)
		}
		ix, err := x12.Parse(x271)
		if err != nil {
			t.Fatal(err)
		}
		// The answer's envelope is the inquiry's, turned around.
		if isa := ix.Segments[0]; strings.TrimSpace(isa.E(6)) != "XYZ01" || strings.TrimSpace(isa.E(8)) != "WARD" || isa.E(13) != "000000077" {
			t.Errorf("ISA = %v", isa)
		}
		a, err := rcm.Read271(ix.Sets()[0].Segments)
		if err != nil {
			t.Fatal(err)
		}
		if a.Active() != tc.active || (tc.reject != "" && (len(a.Rejects) != 1 || a.Rejects[0].Code != tc.reject)) {
			t.Errorf("member %s: %+v", tc.member, a)
		}
		if tc.active && a.Benefits[0].Plan != "Gold PPO" {
			t.Errorf("plan = %q", a.Benefits[0].Plan)
		}
	}
	if _, err := l.Eligibility(context.Background(), []byte("ISA*nonsense")); !errors.Is(err, ErrRefused) {
		t.Errorf("garbage: %v, want ErrRefused", err)
	}
}

// Stedi's raw-X12 API as its documentation gives it: POST JSON {"x12"}
// with the API key in Authorization.
func TestStedi(t *testing.T) {
	x271 := "ISA*...271~"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			X12 string `json:"x12"`
		}
		b, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.Header.Get("Authorization") != "key1" || r.Header.Get("Content-Type") != "application/json" ||
			json.Unmarshal(b, &in) != nil || !strings.HasPrefix(in.X12, "ISA*") {
			w.WriteHeader(401)
			io.WriteString(w, `{"message":"Unauthorized"}`)
			return
		}
		switch r.URL.Path {
		case "/2024-04-01/change/medicalnetwork/eligibility/v3/raw-x12":
			json.NewEncoder(w).Encode(map[string]any{"meta": map[string]any{"traceId": "t"}, "x12": x271})
		case "/2024-04-01/change/medicalnetwork/professionalclaims/v3/raw-x12-submission":
			io.WriteString(w, `{"status":"SUCCESS","controlNumber":"000000001","claimReference":{"correlationId":"01J1M588"}}`)
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	s := &Stedi{BaseURL: srv.URL + "/2024-04-01", APIKey: "key1", Client: srv.Client()}
	got, err := s.Eligibility(context.Background(), inquiry(t, "M1"))
	if err != nil || string(got) != x271 {
		t.Fatalf("eligibility: %q, %v", got, err)
	}
	ack, ref, err := s.Submit(context.Background(), []byte("ISA*837"))
	if err != nil || ack != nil || ref != "01J1M588" {
		t.Fatalf("submit: %q %q %v", ack, ref, err)
	}
	s.APIKey = "wrong"
	if _, err := s.Eligibility(context.Background(), inquiry(t, "M1")); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("bad key: %v, want ErrRefused", err)
	}
}
