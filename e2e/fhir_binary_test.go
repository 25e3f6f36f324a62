package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardhealth/ward/internal/store/storetest"
)

// TestFHIRBinary: a PDF and a 100 MiB file round-trip through the FHIR
// Binary endpoint in their own format on both backends (the 100 MiB one
// past the 6 MiB request body limit, streamed into Z3 and back), the large
// one's FHIR JSON read streams its base64 data, and the server's peak
// resident memory is reported and must not grow with the file.
func TestFHIRBinary(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			w := startWard(t, b)
			tok := w.token(t, w.Admin)
			do := func(method, path, contentType, accept string, body io.Reader, size int64) *http.Response {
				t.Helper()
				req, _ := http.NewRequest(method, w.URL+"/fhir"+path, body)
				req.Header.Set("Authorization", "Bearer "+tok)
				if contentType != "" {
					req.Header.Set("Content-Type", contentType)
				}
				if accept != "" {
					req.Header.Set("Accept", accept)
				}
				if body != nil {
					req.ContentLength = size
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			created := func(res *http.Response) string {
				t.Helper()
				defer res.Body.Close()
				var m struct{ ID, ContentType string }
				raw, _ := io.ReadAll(res.Body)
				if res.StatusCode != 201 || json.Unmarshal(raw, &m) != nil || m.ID == "" {
					t.Fatalf("create: %d %s", res.StatusCode, raw)
				}
				return m.ID
			}

			// A PDF: the bytes back as sent, and in FHIR JSON as base64.
			pdf := []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
			id := created(do("POST", "/Binary", "application/pdf", "", bytes.NewReader(pdf), int64(len(pdf))))
			res := do("GET", "/Binary/"+id, "", "application/pdf", nil, 0)
			got, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/pdf" || !bytes.Equal(got, pdf) {
				t.Fatalf("PDF read: %d %s %q", res.StatusCode, res.Header.Get("Content-Type"), got)
			}
			res = do("GET", "/Binary/"+id, "", "application/fhir+json", nil, 0)
			var bin struct{ ResourceType, ContentType, Data string }
			_ = json.NewDecoder(res.Body).Decode(&bin)
			res.Body.Close()
			if bin.ResourceType != "Binary" || bin.ContentType != "application/pdf" || bin.Data != base64.StdEncoding.EncodeToString(pdf) {
				t.Fatalf("PDF as FHIR: %+v", bin)
			}

			// 100 MiB: streamed in and out, the server's peak memory flat.
			const size = 100 << 20
			before := vmHWM(t, w.cmd.Process.Pid)
			start := time.Now()
			id = created(do("POST", "/Binary", "application/octet-stream", "", &pattern{n: size}, size))
			up := time.Since(start)
			afterUp := vmHWM(t, w.cmd.Process.Pid)
			start = time.Now()
			res = do("GET", "/Binary/"+id, "", "application/octet-stream", nil, 0)
			h := sha256.New()
			n, err := io.Copy(h, res.Body)
			res.Body.Close()
			down := time.Since(start)
			if err != nil || res.StatusCode != 200 || n != size || hex.EncodeToString(h.Sum(nil)) != patternSHA(size) {
				t.Fatalf("100 MiB read: %d, %d bytes, %v", res.StatusCode, n, err)
			}
			// The FHIR JSON read: data is the base64 of the same bytes.
			res = do("GET", "/Binary/"+id, "", "application/fhir+json", nil, 0)
			raw, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("100 MiB as FHIR: %d %v", res.StatusCode, err)
			}
			_, data, ok := strings.Cut(string(raw), `"data":"`)
			data = strings.TrimSuffix(data, `"}`)
			dec, err := base64.StdEncoding.DecodeString(data)
			raw = nil
			if !ok || err != nil || len(dec) != size {
				t.Fatalf("100 MiB as FHIR: data of %d bytes, %v", len(dec), err)
			}
			if sum := sha256.Sum256(dec); hex.EncodeToString(sum[:]) != patternSHA(size) {
				t.Fatal("100 MiB as FHIR: data differs")
			}
			dec = nil
			after := vmHWM(t, w.cmd.Process.Pid)
			t.Logf("100 MiB Binary on %s: server peak RSS %d MiB before, %d MiB after the upload, %d MiB after the native and FHIR reads (upload %v, native read %v)",
				b.Name, before>>10, afterUp>>10, after>>10, up.Round(time.Millisecond), down.Round(time.Millisecond))
			if after-before > 64<<10 {
				t.Errorf("server peak RSS grew by %d MiB over a 100 MiB Binary: not streamed", (after-before)>>10)
			}
			// Over the body limit, a FHIR JSON body is still refused.
			big := `{"resourceType":"Binary","contentType":"text/plain","data":"` + strings.Repeat("eHh4", 7<<18) + `"}`
			res = do("POST", "/Binary", "application/fhir+json", "", strings.NewReader(big), int64(len(big)))
			res.Body.Close()
			if res.StatusCode != 413 {
				t.Fatalf("7 MiB FHIR JSON body: %d, want 413", res.StatusCode)
			}
		})
	}
}
