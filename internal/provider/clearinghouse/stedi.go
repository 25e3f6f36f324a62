package clearinghouse

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// DefaultStediURL is Stedi's healthcare API.
const DefaultStediURL = "https://healthcare.us.stedi.com/2024-04-01"

// Stedi posts raw X12 to Stedi's API, whose raw-X12 endpoints keep Change
// Healthcare's shape (POST JSON {"x12": "..."}, the API key in
// Authorization): eligibility answers at once with the 271; a claim is
// accepted for sending and its 277CA comes later (not fetched by Ward yet).
type Stedi struct {
	BaseURL string
	APIKey  string
	Client  *http.Client // the egress policy's
}

var _ Clearinghouse = (*Stedi)(nil)

// Eligibility posts the 270 and returns the 271 from the answer's x12.
func (s *Stedi) Eligibility(ctx context.Context, x270 []byte) ([]byte, error) {
	var out struct {
		X12 string `json:"x12"`
	}
	if err := s.post(ctx, "/change/medicalnetwork/eligibility/v3/raw-x12", x270, &out); err != nil {
		return nil, err
	}
	if out.X12 == "" {
		return nil, fmt.Errorf("clearinghouse: stedi answered without an x12 271")
	}
	return []byte(out.X12), nil
}

// Submit posts the 837P; the reference is Stedi's correlation id.
func (s *Stedi) Submit(ctx context.Context, x837 []byte) ([]byte, string, error) {
	var out struct {
		Status         string `json:"status"`
		ClaimReference struct {
			CorrelationID string `json:"correlationId"`
		} `json:"claimReference"`
	}
	if err := s.post(ctx, "/change/medicalnetwork/professionalclaims/v3/raw-x12-submission", x837, &out); err != nil {
		return nil, "", err
	}
	if out.Status != "SUCCESS" {
		return nil, "", fmt.Errorf("%w: stedi status %q", ErrRefused, out.Status)
	}
	return nil, out.ClaimReference.CorrelationID, nil
}

func (s *Stedi) post(ctx context.Context, path string, x12 []byte, out any) error {
	body, err := json.Marshal(map[string]string{"x12": string(x12)})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 70*time.Second) // payers may take a minute
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(s.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", s.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.Client.Do(req)
	if err != nil {
		return fmt.Errorf("clearinghouse: stedi: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("clearinghouse: stedi: %w", err)
	}
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(b, &e)
		return fmt.Errorf("%w: stedi %d: %s", ErrRefused, resp.StatusCode, clip(e.Message))
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("clearinghouse: stedi answered %d", resp.StatusCode)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("clearinghouse: stedi's answer: %w", err)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
