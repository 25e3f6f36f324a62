package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/rcm"
	"github.com/wardhealth/ward/internal/store/storetest"
	"github.com/wardhealth/ward/internal/x12"
)

// stediStandIn is a loopback stand-in for Stedi's raw-X12 endpoints, which
// keep Change Healthcare's shape: POST JSON {"x12": "..."} with the API key
// in Authorization. It checks each request as documented (path, key,
// content type, an interchange of the right guide), answers a 270 with a
// 271 (member SILVER1 active on the plan "Stand-in Silver", others not
// found) and an 837P with SUCCESS and a correlation id.
type stediStandIn struct {
	t        *testing.T
	srv      *httptest.Server
	key      string
	mu       sync.Mutex
	requests map[string]int
	failed   map[string]bool // CLM01s already answered 503 once
}

func newStediStandIn(t *testing.T) *stediStandIn {
	s := &stediStandIn{t: t, key: "stedi-test-key-e2e", requests: map[string]int{}, failed: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *stediStandIn) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != s.key {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"Unauthorized"}`)
		return
	}
	var in struct {
		X12 string `json:"x12"`
	}
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &in) != nil {
		s.t.Errorf("stedi stand-in: %s %s %q", r.Method, r.Header.Get("Content-Type"), body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	ix, err := x12.Parse([]byte(in.X12))
	if err != nil || len(ix.Sets()) != 1 {
		s.t.Errorf("stedi stand-in: not one transaction set: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"message":%q}`, fmt.Sprint(err))
		return
	}
	set := ix.Sets()[0]
	s.mu.Lock()
	s.requests[r.URL.Path]++
	s.mu.Unlock()
	switch r.URL.Path {
	case "/2024-04-01/change/medicalnetwork/eligibility/v3/raw-x12":
		q, err := rcm.ReadInquiry(set.Segments)
		if err != nil || set.GS.E(8) != rcm.Version270 {
			s.t.Errorf("stedi stand-in: 270: %v %v", err, set.GS)
		}
		cov := fmt.Sprintf(`{"resourceType":"Coverage","status":"active","subscriberId":"SILVER1","class":[{"type":{"coding":[{"code":"plan"}]},"value":"S","name":"Stand-in Silver"}]}`)
		a := rcm.AnswerFromCoverages(q, [][]byte{[]byte(cov)})
		now := time.Now()
		b, _ := rcm.Interchange(rcm.Segments271(a, now.Format("20060102"), now.Format("1504")), x12.Envelope{SenderQual: "ZZ", SenderID: "STEDI",
			ReceiverQual: "ZZ", ReceiverID: "WARD", Control: 5, Time: now, FunctionalID: "HB", Version: rcm.Version271}, "271").Bytes()
		json.NewEncoder(w).Encode(map[string]any{"meta": map[string]any{"traceId": "t1"}, "x12": string(b)})
	case "/2024-04-01/change/medicalnetwork/professionalclaims/v3/raw-x12-submission":
		if set.GS.E(8) != rcm.Version837P || len(rcm.Validate(rcm.Loops837P(set.Segments))) > 0 {
			s.t.Errorf("stedi stand-in: 837P invalid: %v", rcm.Validate(rcm.Loops837P(set.Segments)))
		}
		// A claim whose patient control number starts FAIL-503 meets an
		// outage the first time.
		for _, seg := range set.Segments {
			if clm := seg.E(1); seg.ID == "CLM" && strings.HasPrefix(clm, "FAIL-503") {
				s.mu.Lock()
				first := !s.failed[clm]
				s.failed[clm] = true
				s.mu.Unlock()
				if first {
					w.WriteHeader(http.StatusServiceUnavailable)
					io.WriteString(w, `{"message":"payer connection unavailable"}`)
					return
				}
			}
		}
		io.WriteString(w, `{"status":"SUCCESS","controlNumber":"1","claimReference":{"correlationId":"STEDI-CORR-1"}}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"no such path"}`)
	}
}

// TestRCMWithSDK runs e2e/rcm.test.mjs: the real @oystehr/sdk's rcm service
// (eligibility 270/271, 837P validation and submission with a 277CA) and
// the payer endpoints against a real `ward serve`, with the local
// clearinghouse and then Stedi's (the stand-in above, reached through the
// egress policy), on each backend, with authorization and a second project.
func TestRCMWithSDK(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := newStediStandIn(t)
			w := startWardWith(t, b, "--egress-allow", "127.0.0.1/32", "--stedi-api-url", st.srv.URL+"/2024-04-01")
			other := w.createProject(t, "other")
			nodeTest(t, "rcm.test.mjs", map[string]string{
				"WARD_URL":               w.URL,
				"WARD_ADMIN_CREDENTIALS": filepath.Join(w.DataDir, "admin-credentials.json"),
				"WARD_B_CLIENT_ID":       other.ClientID,
				"WARD_B_CLIENT_SECRET":   other.ClientSecret,
				"STEDI_KEY":              st.key,
			})
			st.mu.Lock()
			defer st.mu.Unlock()
			for path, n := range map[string]int{"eligibility/v3/raw-x12": 2, "raw-x12-submission": 1} {
				got := 0
				for p, c := range st.requests {
					if strings.HasSuffix(p, path) {
						got += c
					}
				}
				if got < n {
					t.Errorf("the stand-in saw %d requests to %s, want %d", got, path, n)
				}
			}
		})
	}
}
