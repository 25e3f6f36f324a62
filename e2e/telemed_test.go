package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	lkauth "github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"golang.org/x/oauth2"

	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/store/storetest"
)

// The LiveKit API key and secret of the test server (livekit-server wants
// secrets of 32 characters or more).
const (
	lkKey    = "wardtest"
	lkSecret = "ward-e2e-livekit-secret-0123456789abcdef"
)

// livekitServer builds (or finds cached) livekit-server and runs it in
// --dev mode on loopback, sending its webhooks to webhookURL. In CI a
// failed build fails the test; elsewhere it skips, saying why.
func livekitServer(t *testing.T, webhookURL string) string {
	t.Helper()
	return livekitServerKeyed(t, webhookURL, lkKey, lkSecret)
}

// livekitServerKeyed is livekitServer with its own key pair (which also
// signs its webhooks).
func livekitServerKeyed(t *testing.T, webhookURL, lkKey, lkSecret string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", "testdata/livekit/build.sh")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("build livekit-server: %v\n%s", err, stderr.String())
		}
		t.Skipf("cannot build livekit-server (not CI, so skipping): %v\n%s", err, stderr.String())
	}
	bin := strings.TrimSpace(stdout.String())
	addr := freeAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	tcp := freeAddr(t)
	udp := freeAddr(t)
	conf := fmt.Sprintf(`port: %s
bind_addresses: ["127.0.0.1"]
rtc:
  tcp_port: %s
  udp_port: %s
  use_external_ip: false
  node_ip: 127.0.0.1
keys:
  %s: %s
webhook:
  api_key: %s
  urls: [%q]
room:
  empty_timeout: 5
  departure_timeout: 1
`, port, tcp[strings.LastIndex(tcp, ":")+1:], udp[strings.LastIndex(udp, ":")+1:], lkKey, lkSecret, lkKey, webhookURL)
	cfgPath := filepath.Join(t.TempDir(), "livekit.yaml")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	srv := exec.Command(bin, "--dev", "--config", cfgPath)
	srv.Stdout, srv.Stderr = log, log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
		if t.Failed() {
			t.Logf("livekit-server log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/")
		if err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("livekit-server did not answer: %v\n%s", err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "ws://" + addr
}

// userToken signs email in through Ward's authorization endpoint and
// returns the user's access token.
func (w *ward) userToken(t *testing.T, clientID, email, password string) string {
	t.Helper()
	conf := &oauth2.Config{ClientID: clientID, RedirectURL: smartCallback,
		Endpoint: oauth2.Endpoint{AuthURL: w.URL + "/oauth/authorize", TokenURL: w.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams},
		Scopes:   []string{"openid", "fhirUser", "user/Encounter.rs"}}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("st", oauth2.SetAuthURLParam("aud", w.URL+"/fhir"), oauth2.S256ChallengeOption(verifier))
	code := login(t, authURL, email, password, "st")
	tok, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// meetingJoin is joinMeeting's answer.
type meetingJoin struct {
	Meeting  struct{ MeetingId string }
	Attendee struct{ AttendeeId, ExternalUserId string }
	URL      string `json:"url"`
	Token    string `json:"token"`
}

// TestTelemedLiveKit: a meeting created through Ward, joined by its two
// participants with the tokens Ward issued on a real livekit-server, a
// non-participant refused, and the room's end finishing the Encounter
// through LiveKit's signed webhook.
func TestTelemedLiveKit(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testTelemedLiveKit(t, b) })
	}
}

// startTelemed starts livekit-server and a ward serve that uses it.
func startTelemed(t *testing.T, b storetest.Backend) (*ward, string) {
	t.Helper()
	wardAddr := freeAddr(t)
	lkURL := livekitServer(t, "http://"+wardAddr+"/v1/telemed/livekit/webhook")
	w := &ward{DataDir: t.TempDir(), log: &syncBuffer{}, URL: "http://" + wardAddr,
		env:   []string{"WARD_LIVEKIT_API_SECRET=" + lkSecret},
		flags: []string{"--livekit-url", lkURL, "--livekit-api-key", lkKey, "--egress-allow", "127.0.0.1/32"}}
	if b.Name == "postgres" {
		w.DB = b.DSN(t)
	}
	w.launch(t)
	raw, err := os.ReadFile(filepath.Join(w.DataDir, "admin-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &w.Admin); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(w.log.String(), lkSecret) {
		t.Fatal("the LiveKit secret is in Ward's log")
	}
	return w, lkURL
}

func testTelemedLiveKit(t *testing.T, b storetest.Backend) {
	w, lkURL := startTelemed(t, b)
	admin := w.token(t, w.Admin)

	// A patient and a practitioner in the meeting, another practitioner not.
	ref := map[string]string{}
	for name, typ := range map[string]string{"alice": "Patient", "drwho": "Practitioner", "drno": "Practitioner"} {
		st, res := w.fhirDo(t, admin, "POST", typ, map[string]any{"resourceType": typ, "name": []any{map[string]any{"family": name}}})
		if st != 201 {
			t.Fatalf("create %s: %d %v", typ, st, res)
		}
		ref[name] = typ + "/" + res["id"].(string)
	}
	var role struct{ ID string }
	if st := w.api(t, admin, "POST", "/iam/role", `{"name":"telemed-user","accessPolicy":{"rule":[
		{"resource":["Telemed:Meeting:*"],"action":["Telemed:JoinMeeting"],"effect":"Allow"},
		{"resource":["FHIR:Encounter"],"action":["FHIR:Read","FHIR:Search"],"effect":"Allow"}]}}`, &role); st >= 300 {
		t.Fatalf("create role: %d", st)
	}
	var app struct {
		ID       string `json:"id"`
		ClientID string `json:"clientId"`
	}
	if st := w.api(t, admin, "POST", "/application", fmt.Sprintf(`{"name":"Telemed app","allowedCallbackUrls":[%q]}`, smartCallback), &app); st >= 300 {
		t.Fatalf("create application: %d", st)
	}
	const password = "correct horse battery staple"
	tokens := map[string]string{}
	for name := range ref {
		w.inviteUser(t, admin, app.ID, role.ID, name+"@example.org", ref[name], password)
		tokens[name] = w.userToken(t, app.ClientID, name+"@example.org", password)
	}

	// The meeting: alice is the subject, drwho in the other-participants
	// extension.
	enc := map[string]any{"resourceType": "Encounter", "status": "planned",
		"class":   map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"},
		"subject": map[string]any{"reference": ref["alice"]},
		"extension": []any{map[string]any{"url": "https://extensions.fhir.oystehr.com/encounter-other-participants",
			"extension": []any{map[string]any{"url": "otherParticipant", "extension": []any{
				map[string]any{"url": "reference", "valueReference": map[string]any{"reference": ref["drwho"]}}}}}}}}
	var created struct{ Encounter map[string]any }
	if st := w.api(t, admin, "POST", "/telemed/v2/meeting", mustJSON(t, map[string]any{"encounter": enc}), &created); st != 200 {
		t.Fatalf("create meeting: %d", st)
	}
	encID, _ := created.Encounter["id"].(string)
	if encID == "" || !strings.Contains(mustJSON(t, created.Encounter), "encounter-virtual-service-pre-release") {
		t.Fatalf("created encounter: %v", created.Encounter)
	}
	// Users may not create meetings (no Telemed:CreateMeeting).
	if st := w.api(t, tokens["alice"], "POST", "/telemed/v2/meeting", mustJSON(t, map[string]any{"encounter": enc}), nil); st != 403 {
		t.Fatalf("a user created a meeting: %d", st)
	}

	join := func(who, query string) (int, meetingJoin) {
		var j meetingJoin
		st := w.api(t, tokens[who], "GET", "/telemed/v2/meeting/"+encID+"/join"+query, "", &j)
		return st, j
	}
	if st, _ := join("drno", ""); st != 403 {
		t.Fatalf("a non-participant's join: %d, want 403", st)
	}
	if st, _ := join("alice", "?anonymous=true"); st != 403 {
		t.Fatalf("a guest token without Telemed:AddAnonymousToMeeting: %d, want 403", st)
	}
	tokens["admin"] = admin
	if st, _ := join("admin", "?anonymous=maybe"); st != 400 {
		t.Fatalf("anonymous=maybe: %d, want 400", st)
	}
	// Another project's full admin does not see this meeting.
	tokens["other"] = w.token(t, w.createProject(t, "other"))
	if st, _ := join("other", ""); st != 404 {
		t.Fatalf("another project's join: %d, want 404", st)
	}
	st, guest := join("admin", "?anonymous=true")
	if st != 200 || !strings.HasPrefix(guest.Attendee.AttendeeId, "anonymous-") {
		t.Fatalf("guest join: %d %+v", st, guest)
	}

	rooms := map[string]*lksdk.Room{}
	for _, who := range []string{"alice", "drwho"} {
		st, j := join(who, "")
		if st != 200 {
			t.Fatalf("%s joins: %d", who, st)
		}
		if j.Attendee.AttendeeId != ref[who] || j.Meeting.MeetingId == "" || j.URL != lkURL || j.Token == "" {
			t.Fatalf("%s's join: %+v", who, j)
		}
		room, err := lksdk.ConnectToRoomWithToken(j.URL, j.Token, lksdk.NewRoomCallback(), lksdk.WithAutoSubscribe(false))
		if err != nil {
			t.Fatalf("%s connects to LiveKit: %v", who, err)
		}
		rooms[who] = room
	}
	defer func() {
		for _, r := range rooms {
			r.Disconnect()
		}
	}()
	// An Encounter edited to name another room gets no token for it.
	st, other := w.fhirDo(t, admin, "GET", "Encounter/"+encID, nil)
	if st != 200 {
		t.Fatalf("read encounter: %d", st)
	}
	tampered := map[string]any{}
	for k, v := range other {
		tampered[k] = v
	}
	tampered["extension"] = []any{map[string]any{"url": "https://extensions.fhir.oystehr.com/encounter-virtual-service-pre-release",
		"extension": []any{map[string]any{"url": "addressString", "valueString": "otherproject_" + encID}}}}
	delete(tampered, "meta")
	tampered["id"] = "tampered" + encID[:8]
	if st, res := w.fhirDo(t, admin, "PUT", "Encounter/"+tampered["id"].(string), tampered); st >= 300 {
		t.Fatalf("put tampered encounter: %d %v", st, res)
	}
	if st := w.api(t, tokens["alice"], "GET", "/telemed/v2/meeting/"+tampered["id"].(string)+"/join", "", nil); st != 409 {
		t.Fatalf("join of an Encounter naming another room: %d, want 409", st)
	}
	// Each sees the other in the room.
	poll(t, 20*time.Second, "both participants in the room", func() bool {
		a := rooms["alice"].GetRemoteParticipants()
		d := rooms["drwho"].GetRemoteParticipants()
		return len(a) == 1 && a[0].Identity() == ref["drwho"] && len(d) == 1 && d[0].Identity() == ref["alice"]
	})
	// LiveKit's webhook of the first join started the Encounter (its
	// room_started came at creation, before the Encounter was stored).
	poll(t, 30*time.Second, "the Encounter in progress by LiveKit's webhook", func() bool {
		st, e := w.fhirDo(t, admin, "GET", "Encounter/"+encID, nil)
		period, _ := e["period"].(map[string]any)
		return st == 200 && e["status"] == "in-progress" && period["start"] != nil && period["end"] == nil
	})
	// A token for this room does not open another.
	_, j2 := join("alice", "")
	if r, err := lksdk.ConnectToRoomWithToken(lkURL, j2.Token, lksdk.NewRoomCallback(), lksdk.WithAutoSubscribe(false)); err != nil || r.Name() != j2.Meeting.MeetingId {
		t.Fatalf("rejoin: %v", err)
	} else {
		r.Disconnect()
	}

	// A forged webhook (not signed with the API secret) changes nothing.
	forged, _ := http.NewRequest("POST", w.URL+"/v1/telemed/livekit/webhook",
		strings.NewReader(fmt.Sprintf(`{"event":"room_finished","room":{"name":%q}}`, j2.Meeting.MeetingId)))
	forged.Header.Set("Authorization", "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ3YXJkdGVzdCJ9.bad")
	if res, err := http.DefaultClient.Do(forged); err != nil || res.StatusCode != 401 {
		t.Fatalf("forged webhook: %v %v", err, res)
	}

	// Both leave; LiveKit closes the empty room and says so.
	for who, r := range rooms {
		r.Disconnect()
		delete(rooms, who)
	}
	poll(t, 60*time.Second, "the Encounter finished by LiveKit's room_finished webhook", func() bool {
		st, e := w.fhirDo(t, admin, "GET", "Encounter/"+encID, nil)
		period, _ := e["period"].(map[string]any)
		return st == 200 && e["status"] == "finished" && period["end"] != nil && period["start"] != nil
	})
	if st, _ := join("alice", ""); st != 409 {
		t.Fatalf("join after the end: %d, want 409", st)
	}

	// The end of a room whose Encounter was deleted leaves it deleted
	// (nobody joins, so LiveKit closes the room after its empty_timeout).
	var gone struct{ Encounter map[string]any }
	if st := w.api(t, admin, "POST", "/telemed/v2/meeting", mustJSON(t, map[string]any{"encounter": enc}), &gone); st != 200 {
		t.Fatalf("create meeting: %d", st)
	}
	goneID := gone.Encounter["id"].(string)
	if st, _ := w.fhirDo(t, admin, "DELETE", "Encounter/"+goneID, nil); st >= 300 {
		t.Fatalf("delete: %d", st)
	}
	poll(t, 60*time.Second, "the webhook of the deleted Encounter's room", func() bool {
		return strings.Contains(w.log.String(), "_"+goneID)
	})
	if st, _ := w.fhirDo(t, admin, "GET", "Encounter/"+goneID, nil); st != 410 {
		t.Fatalf("the deleted Encounter after its room's end: %d, want 410", st)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// poll waits for cond, failing after d.
func poll(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTelemedSDK runs telemed.test.mjs: the SDK's createMeeting and
// joinMeeting against ward serve and a real livekit-server.
func TestTelemedSDK(t *testing.T) {
	requireNode(t)
	w, lkURL := startTelemed(t, storetest.Backends()[0])
	nodeTest(t, "telemed.test.mjs", map[string]string{"WARD_URL": w.URL, "WARD_LIVEKIT_URL": lkURL,
		"WARD_A_CLIENT_ID": w.Admin.ClientID, "WARD_A_CLIENT_SECRET": w.Admin.ClientSecret})
}

// TestTelemedLatency measures meeting create + join (LiveKit room
// creation included) against its peer in the same run, a FHIR Encounter
// create + read, over loopback HTTP. A measurement, not a check: it runs
// only with WARD_BENCH_TELEMED=<iterations> and logs the figures.
func TestTelemedLatency(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("WARD_BENCH_TELEMED"))
	if n <= 0 {
		t.Skip("WARD_BENCH_TELEMED (iterations) is not set")
	}
	w, _ := startTelemed(t, storetest.Backends()[0])
	admin := w.token(t, w.Admin)
	enc := mustJSON(t, map[string]any{"encounter": map[string]any{"resourceType": "Encounter", "status": "planned",
		"class": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"}}})
	meeting := func() {
		var c struct{ Encounter struct{ ID string } }
		if st := w.api(t, admin, "POST", "/telemed/v2/meeting", enc, &c); st != 200 {
			t.Fatalf("create meeting: %d", st)
		}
		if st := w.api(t, admin, "GET", "/telemed/v2/meeting/"+c.Encounter.ID+"/join", "", nil); st != 200 {
			t.Fatalf("join: %d", st)
		}
	}
	plain := func() {
		st, e := w.fhirDo(t, admin, "POST", "Encounter", map[string]any{"resourceType": "Encounter", "status": "planned",
			"class": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"}})
		if st != 201 {
			t.Fatalf("create encounter: %d", st)
		}
		if st, _ := w.fhirDo(t, admin, "GET", "Encounter/"+e["id"].(string), nil); st != 200 {
			t.Fatalf("read encounter: %d", st)
		}
	}
	measure := func(f func()) (p50, p99 time.Duration) {
		for range 10 {
			f() // warm up
		}
		d := make([]time.Duration, n)
		for i := range d {
			start := time.Now()
			f()
			d[i] = time.Since(start)
		}
		slices.Sort(d)
		return d[n/2], d[min(n-1, n*99/100)]
	}
	// Interleaved halves, so load on the shared machine hits both alike.
	m50, m99 := measure(meeting)
	p50, p99 := measure(plain)
	m50b, m99b := measure(meeting)
	p50b, p99b := measure(plain)
	t.Logf("meeting create+join: p50 %v / %v, p99 %v / %v", m50, m50b, m99, m99b)
	t.Logf("peer FHIR Encounter create+read: p50 %v / %v, p99 %v / %v", p50, p50b, p99, p99b)
	t.Logf("ratio meeting/peer: p50 %.2f, p99 %.2f", float64(m50+m50b)/float64(p50+p50b), float64(m99+m99b)/float64(p99+p99b))
}

// TestTelemedProjectLiveKit: a project with its own LiveKit (its settings
// and secrets) gets its rooms there and tokens signed with its key, the
// others stay on the server's; each project's webhooks are verified with
// its own secret, so the server's LiveKit (or anyone with its key) cannot
// start or end another project's meetings.
func TestTelemedProjectLiveKit(t *testing.T) {
	const ownKey, ownSecret = "ownproject", "own-project-livekit-secret-0123456789abcdef"
	wardAddr := freeAddr(t)
	hook := "http://" + wardAddr + "/v1/telemed/livekit/webhook"
	serverLK := livekitServer(t, hook)
	ownLK := livekitServerKeyed(t, hook, ownKey, ownSecret)
	w := &ward{DataDir: t.TempDir(), log: &syncBuffer{}, URL: "http://" + wardAddr,
		env:   []string{"WARD_LIVEKIT_API_SECRET=" + lkSecret, "WARD_SECRETS_KEY=" + base64.StdEncoding.EncodeToString(seal.NewKey())},
		flags: []string{"--livekit-url", serverLK, "--livekit-api-key", lkKey, "--egress-allow", "127.0.0.1/32"}}
	w.launch(t)
	raw, err := os.ReadFile(filepath.Join(w.DataDir, "admin-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &w.Admin); err != nil {
		t.Fatal(err)
	}
	admin := w.token(t, w.Admin)
	own := w.token(t, w.createProject(t, "own-livekit"))

	// Half a configuration is refused, not half used.
	if st := w.api(t, own, "PATCH", "/project", `{"providers":{"video":"livekit"}}`, nil); st != 200 {
		t.Fatalf("choose livekit: %d", st)
	}
	if st := w.api(t, own, "POST", "/secret", fmt.Sprintf(`{"name":"LIVEKIT_URL","value":%q}`, ownLK), nil); st != 200 {
		t.Fatalf("secret: %d", st)
	}
	enc := mustJSON(t, map[string]any{"encounter": map[string]any{"resourceType": "Encounter", "status": "planned",
		"class": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"}}})
	if st := w.api(t, own, "POST", "/telemed/v2/meeting", enc, nil); st != 400 {
		t.Fatalf("a meeting with only LIVEKIT_URL set: %d, want 400", st)
	}
	for name, v := range map[string]string{"LIVEKIT_API_KEY": ownKey, "LIVEKIT_API_SECRET": ownSecret} {
		if st := w.api(t, own, "POST", "/secret", fmt.Sprintf(`{"name":%q,"value":%q}`, name, v), nil); st != 200 {
			t.Fatalf("secret %s: %d", name, st)
		}
	}

	meeting := func(tok string) (string, meetingJoin) {
		var c struct{ Encounter struct{ ID string } }
		if st := w.api(t, tok, "POST", "/telemed/v2/meeting", enc, &c); st != 200 {
			t.Fatalf("create meeting: %d", st)
		}
		var j meetingJoin
		if st := w.api(t, tok, "GET", "/telemed/v2/meeting/"+c.Encounter.ID+"/join", "", &j); st != 200 {
			t.Fatalf("join: %d", st)
		}
		return c.Encounter.ID, j
	}
	ownEnc, ownJoin := meeting(own)
	_, srvJoin := meeting(admin)
	if ownJoin.URL != ownLK || srvJoin.URL != serverLK {
		t.Fatalf("join URLs: own project %s (want %s), default %s (want %s)", ownJoin.URL, ownLK, srvJoin.URL, serverLK)
	}
	// Each room is on its project's LiveKit only.
	rooms := func(url, key, secret string) []string {
		var names []string
		list, err := lksdk.NewRoomServiceClient(url, key, secret).ListRooms(context.Background(), &livekit.ListRoomsRequest{})
		if err != nil {
			t.Fatalf("list rooms of %s: %v", url, err)
		}
		for _, r := range list.Rooms {
			names = append(names, r.Name)
		}
		return names
	}
	if own, srv := rooms(ownLK, ownKey, ownSecret), rooms(serverLK, lkKey, lkSecret); !slices.Contains(own, ownJoin.Meeting.MeetingId) ||
		slices.Contains(srv, ownJoin.Meeting.MeetingId) || !slices.Contains(srv, srvJoin.Meeting.MeetingId) {
		t.Fatalf("rooms: own LiveKit %v, server's %v", own, srv)
	}
	// The project's token is its key's: the server's LiveKit refuses it.
	if r, err := lksdk.ConnectToRoomWithToken(serverLK, ownJoin.Token, lksdk.NewRoomCallback(), lksdk.WithAutoSubscribe(false)); err == nil {
		r.Disconnect()
		t.Fatal("the server's LiveKit took the project's token")
	}
	// A webhook about the project's room signed with the server's key (a
	// valid LiveKit signature, the wrong project) changes nothing.
	forged := fmt.Sprintf(`{"event":"room_finished","room":{"name":%q},"createdAt":"%d"}`, ownJoin.Meeting.MeetingId, time.Now().Unix())
	sum := sha256.Sum256([]byte(forged))
	sig, err := lkauth.NewAccessToken(lkKey, lkSecret).SetValidFor(time.Minute).SetSha256(base64.StdEncoding.EncodeToString(sum[:])).ToJWT()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", w.URL+"/v1/telemed/livekit/webhook", strings.NewReader(forged))
	req.Header.Set("Authorization", sig)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 401 {
		t.Fatalf("webhook for the project's room signed with the server's key: %v %v", err, res)
	}

	room, err := lksdk.ConnectToRoomWithToken(ownJoin.URL, ownJoin.Token, lksdk.NewRoomCallback(), lksdk.WithAutoSubscribe(false))
	if err != nil {
		t.Fatalf("connect to the project's LiveKit: %v", err)
	}
	encounter := func() (string, map[string]any) {
		st, e := w.fhirDo(t, own, "GET", "Encounter/"+ownEnc, nil)
		if st != 200 {
			t.Fatalf("read encounter: %d", st)
		}
		period, _ := e["period"].(map[string]any)
		status, _ := e["status"].(string)
		return status, period
	}
	poll(t, 30*time.Second, "the project's Encounter started by its LiveKit's webhook", func() bool {
		status, period := encounter()
		return status == "in-progress" && period["start"] != nil
	})
	room.Disconnect()
	poll(t, 60*time.Second, "the project's Encounter finished by its LiveKit's webhook", func() bool {
		status, period := encounter()
		return status == "finished" && period["end"] != nil
	})
	if strings.Contains(w.log.String(), ownSecret) {
		t.Fatal("the project's LiveKit secret is in Ward's log")
	}
}

// TestTelemedUnconfigured: without a video provider the endpoints say so
// (503), and the webhook accepts nothing.
func TestTelemedUnconfigured(t *testing.T) {
	w := startWard(t, storetest.Backends()[0])
	admin := w.token(t, w.Admin)
	body := `{"encounter":{"resourceType":"Encounter","status":"planned","class":{"code":"VR"}}}`
	if st := w.api(t, admin, "POST", "/telemed/v2/meeting", body, nil); st != 503 {
		t.Fatalf("create meeting without a provider: %d", st)
	}
	res, err := http.Post(w.URL+"/v1/telemed/livekit/webhook", "application/webhook+json", strings.NewReader(`{"event":"room_finished"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("webhook without a provider: %d, want 401", res.StatusCode)
	}
}
