package telemed

import (
	"encoding/json"
	"testing"
)

func TestParticipants(t *testing.T) {
	var enc map[string]any
	if err := json.Unmarshal([]byte(`{
	  "resourceType": "Encounter",
	  "subject": {"reference": "Patient/p"},
	  "participant": [{"individual": {"reference": "Practitioner/a"}}, {"type": []}],
	  "extension": [
	    {"url": "`+OtherParticipantsURL+`", "extension": [{"url": "otherParticipant", "extension": [
	      {"url": "period", "valuePeriod": {"start": "2026-01-01"}},
	      {"url": "reference", "valueReference": {"reference": "RelatedPerson/r"}}]}]},
	    {"url": "https://example.com/other", "valueReference": {"reference": "Practitioner/not"}}
	  ]}`), &enc); err != nil {
		t.Fatal(err)
	}
	got := participants(enc)
	for _, ref := range []string{"Patient/p", "Practitioner/a", "RelatedPerson/r"} {
		if !got[ref] {
			t.Errorf("%s is not a participant", ref)
		}
	}
	if got["Practitioner/not"] || len(got) != 3 {
		t.Errorf("participants %v: only the three", got)
	}
}

func TestVirtualService(t *testing.T) {
	enc := map[string]any{"extension": []any{
		map[string]any{"url": VirtualServiceURL, "extension": []any{map[string]any{"url": "addressString", "valueString": "evil_room"}}},
		map[string]any{"url": "keep", "valueString": "x"},
	}}
	setVirtualService(enc, "livekit-video-meetings", "p_e")
	if got := meetingRoom(enc); got != "p_e" {
		t.Fatalf("room %q", got)
	}
	if n := len(enc["extension"].([]any)); n != 2 {
		t.Fatalf("%d extensions, want the kept one and the meeting", n)
	}
}

func FuzzSplitRoom(f *testing.F) {
	f.Add("p1", "e1")
	f.Add("a_b", "c")
	f.Fuzz(func(t *testing.T, project, encounter string) {
		p, e, ok := SplitRoom(RoomName(project, encounter))
		if ok && RoomName(p, e) != RoomName(project, encounter) {
			t.Fatalf("%q %q split into %q %q", project, encounter, p, e)
		}
		if ok && (p == "" || e == "") {
			t.Fatal("an empty part")
		}
	})
}
