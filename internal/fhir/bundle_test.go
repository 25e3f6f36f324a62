package fhir

import (
	"regexp"
	"testing"
)

// TestBundleEntryStatus: every batch and transaction response entry, a
// success or an error, has the bare status code ("201", not "201
// Created"), as Oystehr answers: its Terraform provider parses the status
// as an integer.
func TestBundleEntryStatus(t *testing.T) {
	ts := restFixture(t, Config{})
	for id, body := range map[string]string{
		"st-1": `{"resourceType":"Patient","id":"st-1","identifier":[{"system":"http://x.test/mrn","value":"st1"}]}`,
		"st-2": `{"resourceType":"Patient","id":"st-2"}`,
	} {
		if res, out := call(t, ts, "PUT", "/fhir/Patient/"+id, body); res.StatusCode != 201 {
			t.Fatalf("setup: %d %v", res.StatusCode, out)
		}
	}
	const mrn = "identifier=http://x.test/mrn|st1"
	cases := []struct {
		name, typ, entry string
		want             string
		outcome          bool // an error entry carries an OperationOutcome
	}{
		{"create", "batch", `{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}`, "201", false},
		{"conditional create that finds", "batch", `{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient","ifNoneExist":"` + mrn + `"}}`, "200", false},
		{"conditional create that creates", "batch", `{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=http://x.test/mrn|none"}}`, "201", false},
		{"update", "batch", `{"resource":{"resourceType":"Patient","id":"st-1","identifier":[{"system":"http://x.test/mrn","value":"st1"}],"gender":"male"},"request":{"method":"PUT","url":"Patient/st-1"}}`, "200", false},
		{"update that creates", "batch", `{"resource":{"resourceType":"Patient","id":"st-new"},"request":{"method":"PUT","url":"Patient/st-new"}}`, "201", false},
		{"conditional update", "batch", `{"resource":{"resourceType":"Patient","identifier":[{"system":"http://x.test/mrn","value":"st1"}]},"request":{"method":"PUT","url":"Patient?` + mrn + `"}}`, "200", false},
		{"patch", "batch", `{"resource":[{"op":"add","path":"/gender","value":"female"}],"request":{"method":"PATCH","url":"Patient/st-1"}}`, "200", false},
		{"read", "batch", `{"request":{"method":"GET","url":"Patient/st-1"}}`, "200", false},
		{"vread", "batch", `{"request":{"method":"GET","url":"Patient/st-1/_history/1"}}`, "200", false},
		{"search", "batch", `{"request":{"method":"GET","url":"Patient?` + mrn + `"}}`, "200", false},
		{"conditional delete of nothing", "batch", `{"request":{"method":"DELETE","url":"Patient?identifier=http://x.test/mrn|nobody"}}`, "204", false},
		{"delete", "batch", `{"request":{"method":"DELETE","url":"Patient/st-new"}}`, "204", false},
		{"error: read of nothing", "batch", `{"request":{"method":"GET","url":"Patient/nobody"}}`, "404", true},
		{"error: read of a deleted resource", "batch", `{"request":{"method":"GET","url":"Patient/st-new"}}`, "410", true},
		{"error: invalid resource", "batch", `{"resource":{"resourceType":"Patient","birthDate":"soon"},"request":{"method":"POST","url":"Patient"}}`, "400", true},
		{"error: stale ifMatch", "batch", `{"resource":{"resourceType":"Patient","id":"st-1"},"request":{"method":"PUT","url":"Patient/st-1","ifMatch":"W/\"1\""}}`, "412", true},
		{"error: bad patch", "batch", `{"resource":[{"op":"remove","path":"/nope"}],"request":{"method":"PATCH","url":"Patient/st-1"}}`, "422", true},
		{"transaction create", "transaction", `{"fullUrl":"urn:uuid:7d0c1c8e-0000-4000-8000-000000000001","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}`, "201", false},
		{"transaction conditional create that finds", "transaction", `{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient","ifNoneExist":"` + mrn + `"}}`, "200", false},
		{"transaction update", "transaction", `{"resource":{"resourceType":"Patient","id":"st-2","gender":"other"},"request":{"method":"PUT","url":"Patient/st-2"}}`, "200", false},
		{"transaction conditional update", "transaction", `{"resource":{"resourceType":"Patient","identifier":[{"system":"http://x.test/mrn","value":"st1"}]},"request":{"method":"PUT","url":"Patient?` + mrn + `"}}`, "200", false},
		{"transaction read", "transaction", `{"request":{"method":"GET","url":"Patient/st-2"}}`, "200", false},
		{"transaction delete", "transaction", `{"request":{"method":"DELETE","url":"Patient/st-2"}}`, "204", false},
	}
	bare := regexp.MustCompile(`^[1-5][0-9][0-9]$`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, out := call(t, ts, "POST", "/fhir", `{"resourceType":"Bundle","type":"`+c.typ+`","entry":[`+c.entry+`]}`)
			if res.StatusCode != 200 || out["type"] != c.typ+"-response" {
				t.Fatalf("bundle: %d %v", res.StatusCode, out)
			}
			e := out["entry"].([]any)[0].(map[string]any)
			resp := e["response"].(map[string]any)
			st, _ := resp["status"].(string)
			if st != c.want || !bare.MatchString(st) {
				t.Fatalf("status %q, want %q: %v", st, c.want, e)
			}
			if _, has := resp["outcome"]; has != c.outcome {
				t.Fatalf("outcome present %v, want %v: %v", has, c.outcome, resp)
			}
		})
	}
}
