package fax

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// DefaultPhaxioURL is Phaxio's REST API; --phaxio-api-url replaces it (a
// test's stand-in).
const DefaultPhaxioURL = "https://api.phaxio.com"

// Phaxio is Phaxio's API v2.1 (https://www.phaxio.com/docs/api/v2.1): HTTP
// basic auth with the API key and secret, multipart form requests, JSON
// answers {success, message, data}.
type Phaxio struct {
	BaseURL           string
	APIKey, APISecret string
	// AreaCode, when set, is the area code numbers are provisioned in
	// (country code 1).
	AreaCode string
	Client   *http.Client // the egress policy's client
}

var _ Provider = (*Phaxio)(nil)

func (*Phaxio) NeedsBytes() bool { return true }

// Provision is POST /v2.1/phone_numbers (country_code, area_code).
func (p *Phaxio) Provision(ctx context.Context) (string, error) {
	fields := map[string]string{"country_code": "1"}
	if p.AreaCode != "" {
		fields["area_code"] = p.AreaCode
	}
	var data struct {
		PhoneNumber string `json:"phone_number"`
	}
	if err := p.do(ctx, http.MethodPost, "/v2.1/phone_numbers", fields, nil, &data); err != nil {
		return "", err
	}
	if data.PhoneNumber == "" {
		return "", fmt.Errorf("phaxio: provisioning answered no phone_number")
	}
	return data.PhoneNumber, nil
}

// Release is DELETE /v2.1/phone_numbers/{number}.
func (p *Phaxio) Release(ctx context.Context, number string) error {
	return p.do(ctx, http.MethodDelete, "/v2.1/phone_numbers/"+url.PathEscape(number), nil, nil, nil)
}

// Send is POST /v2.1/faxes with to, caller_id and the document as file.
func (p *Phaxio) Send(ctx context.Context, f Fax) (Sent, error) {
	fields := map[string]string{"to": f.To}
	if f.From != "" {
		fields["caller_id"] = f.From
	}
	if f.CallbackURL != "" {
		fields["callback_url"] = f.CallbackURL
	}
	var data struct {
		ID json.Number `json:"id"`
	}
	if err := p.do(ctx, http.MethodPost, "/v2.1/faxes", fields, &f.Document, &data); err != nil {
		return Sent{}, err
	}
	if data.ID == "" {
		return Sent{}, fmt.Errorf("phaxio: the fax was taken without an id")
	}
	return Sent{ID: data.ID.String(), Status: "queued"}, nil
}

// do makes one request. A 4xx (other than 429) is ErrRefused with Phaxio's
// message, which holds no secret.
func (p *Phaxio) do(ctx context.Context, method, path string, fields map[string]string, file *Document, data any) error {
	var body bytes.Buffer
	ctype := ""
	if fields != nil || file != nil {
		mw := multipart.NewWriter(&body)
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			if err := mw.WriteField(k, fields[k]); err != nil {
				return fmt.Errorf("phaxio: %w", err)
			}
		}
		if file != nil {
			fw, err := mw.CreateFormFile("file", file.Name)
			if err != nil {
				return fmt.Errorf("phaxio: %w", err)
			}
			if _, err := fw.Write(file.Bytes); err != nil {
				return fmt.Errorf("phaxio: %w", err)
			}
		}
		if err := mw.Close(); err != nil {
			return fmt.Errorf("phaxio: %w", err)
		}
		ctype = mw.FormDataContentType()
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(p.BaseURL, "/")+path, &body)
	if err != nil {
		return fmt.Errorf("phaxio: %w", err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(p.APIKey, p.APISecret)
	resp, err := p.Client.Do(req)
	if err != nil {
		return fmt.Errorf("phaxio: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var out struct {
		Success bool            `json:"success"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(raw, &out)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300 && out.Success:
		if data != nil && len(out.Data) > 0 {
			if err := json.Unmarshal(out.Data, data); err != nil {
				return fmt.Errorf("phaxio: answer data: %w", err)
			}
		}
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("phaxio: status %d: %s", resp.StatusCode, clip(out.Message))
	default:
		return fmt.Errorf("%w: phaxio status %d: %s", ErrRefused, resp.StatusCode, clip(out.Message))
	}
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
