package zambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/fault"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/zambda/runtime"
)

// Call is one invocation request.
type Call struct {
	IDOrName  string
	Payload   []byte            // raw JSON text of the payload ("{}" when empty); null for cron
	Headers   map[string]string // single-valued request headers
	Public    bool              // through execute-public: only http_open functions
	Caller    *auth.Principal   // nil for public, cron and subscription calls
	RequestID string
	Trigger   string // what started it: "http", "cron", "subscription"
}

// Outcome is what execute answers: {status, output, headers?}.
type Outcome struct {
	Status  int               `json:"status"`
	Output  json.RawMessage   `json:"output"`
	Headers map[string]string `json:"headers,omitempty"`
}

// event is the Oystehr handler event (contract 4.3).
type event struct {
	Body           *string           `json:"body"`
	Headers        map[string]string `json:"headers"`
	Secrets        map[string]string `json:"secrets"`
	RequestContext map[string]any    `json:"requestContext"`
	AccessToken    string            `json:"accessToken,omitempty"`
}

// handlerResult is the API-Gateway-like answer a handler returns.
type handlerResult struct {
	StatusCode *int              `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       json.RawMessage   `json:"body"`
}

// failure is an invocation that did not produce a handler answer.
func failure(status int, format string, args ...any) Outcome {
	msg := fmt.Sprintf(format, args...)
	out, _ := json.Marshal(map[string]any{"message": msg, "code": status})
	return Outcome{Status: status, Output: out}
}

// Execute runs a function once and turns its answer into an Outcome. Errors
// before the function runs (no such function, not public, no code, and no
// room to run it: a fault.ErrTooMany, retryable) are returned as errors;
// what happens inside the run is an Outcome.
func (s *Service) Execute(ctx context.Context, projectID string, c Call) (Outcome, error) {
	z, dir, secrets, err := s.load(ctx, projectID, c.IDOrName)
	if err != nil {
		return Outcome{}, err
	}
	if c.Public && z.TriggerMethod != "http_open" {
		return Outcome{}, fault.Forbidden("zambda %q is not public (triggerMethod %s): call /zambda/%s/execute with a token", z.Name, z.TriggerMethod, z.ID)
	}
	if c.RequestID == "" {
		c.RequestID = uuid.NewString()
	}
	timeout := time.Duration(z.TimeoutSeconds) * time.Second
	ev := event{Headers: c.Headers, Secrets: secrets, RequestContext: map[string]any{
		"requestId": c.RequestID, "zambdaId": z.ID, "zambdaName": z.Name, "projectId": projectID, "trigger": c.Trigger,
	}}
	if c.Payload != nil {
		body := string(c.Payload)
		ev.Body = &body
	}
	if c.Caller != nil {
		ev.RequestContext["caller"] = map[string]string{"kind": string(c.Caller.Kind), "id": c.Caller.ID}
	}
	if z.ExecutionRoleID != "" {
		client, err := s.iam.ExecutionRoleClient(ctx, projectID, z.ExecutionRoleID)
		if err != nil {
			return Outcome{}, fmt.Errorf("execution role: %w", err)
		}
		p := auth.Principal{ProjectID: projectID, Kind: auth.KindM2M, ID: client.ID, ClientID: client.ClientID}
		// A little longer than the function may run, so the token outlives
		// every call it makes, and not much more.
		tok, _, err := s.issuer.Issue(ctx, p, timeout+30*time.Second)
		if err != nil {
			return Outcome{}, fmt.Errorf("execution role token: %w", err)
		}
		ev.AccessToken = tok
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return Outcome{}, fmt.Errorf("event: %w", err)
	}
	res, runErr := s.invoke(ctx, z, dir, c.RequestID, payload, timeout)
	var re *runtime.Error
	if errors.As(runErr, &re) && re.Kind == runtime.KindBusy {
		// The function did not run: the caller may simply try again (the
		// SDK does on 429), as the Project API answers any rate limit.
		return Outcome{}, fault.TooMany(busyRetryAfter, "%s", re.Message)
	}
	return s.outcome(z, res, runErr), nil
}

// busyRetryAfter is the wait suggested to a call refused for lack of a
// worker: the invocations ahead of it usually end within seconds.
const busyRetryAfter = time.Second

// load finds an active function, its unpacked code and the project's
// secrets. Errors are client-facing faults or internal errors.
func (s *Service) load(ctx context.Context, projectID, idOrName string) (store.Zambda, string, map[string]string, error) {
	z, err := s.st.GetZambda(ctx, projectID, idOrName)
	if err != nil {
		return store.Zambda{}, "", nil, notFound(err, idOrName)
	}
	if z.Status != "Active" {
		reason := ""
		if z.StatusReason != "" {
			reason = ": " + z.StatusReason
		}
		return store.Zambda{}, "", nil, fault.Conflict("zambda %q cannot run: its status is %s%s; upload its code with s3-upload", z.Name, z.Status, reason)
	}
	obj, err := s.z3.Get(ctx, projectID, CodeBucket, z.CodePath)
	if err != nil {
		return store.Zambda{}, "", nil, fmt.Errorf("zambda %s code: %w", z.ID, err)
	}
	dir, err := s.code.dir(ctx, obj)
	if err != nil {
		return store.Zambda{}, "", nil, fmt.Errorf("zambda %s code: %w", z.ID, err)
	}
	secrets, err := s.secretValues(ctx, projectID)
	if err != nil {
		return store.Zambda{}, "", nil, err
	}
	return z, dir, secrets, nil
}

// invoke runs the function once with payload as its event and stores its
// logs in the background.
func (s *Service) invoke(ctx context.Context, z store.Zambda, dir, requestID string, payload []byte, timeout time.Duration) (runtime.Result, error) {
	fn := runtime.Function{Key: z.ID + "@" + z.FileChecksum, Name: z.Name, Runtime: z.Runtime, CodeDir: dir, Handler: "index.index", Project: z.ProjectID,
		MemoryMB: z.MemorySize, Timeout: time.Duration(z.TimeoutSeconds) * time.Second}
	start := s.now()
	res, runErr := s.run.Invoke(ctx, fn, runtime.Invocation{RequestID: requestID, Payload: payload, Deadline: start.Add(timeout)})
	out := s.outcome(z, res, runErr)
	var re *runtime.Error
	if s.cfg.Activity != nil && !(errors.As(runErr, &re) && re.Kind == runtime.KindBusy) {
		// A run refused for lack of a worker never ran: not counted.
		s.cfg.Activity.Invocation(z.ProjectID, runErr != nil || out.Status >= 500)
	}
	// Logs are stored after the answer: the caller does not wait for their
	// commit (a durable write), and a crash may lose the last lines.
	s.logsWG.Add(1)
	go func() {
		defer s.logsWG.Done()
		s.writeLogs(context.WithoutCancel(ctx), z, requestID, start, res, runErr, out)
	}()
	return res, runErr
}

// AuthorizerEvent is what a token authorizer function receives: the
// HealthLake IdP Lambda input, plus the project's secrets (which hold the
// outside identity provider's credentials) and a request context.
type AuthorizerEvent struct {
	DatastoreEndpoint string            `json:"datastoreEndpoint"`
	OperationName     string            `json:"operationName"`
	BearerToken       string            `json:"bearerToken"`
	Secrets           map[string]string `json:"secrets"`
	RequestContext    map[string]any    `json:"requestContext"`
}

// RunAuthorizer runs a token authorizer function with the event as its
// raw Lambda event and returns the handler's raw answer. The deadline is
// the lesser of timeout and the function's own; a function that fails in
// any way is an error (the caller fails closed).
func (s *Service) RunAuthorizer(ctx context.Context, projectID, idOrName string, ev AuthorizerEvent, timeout time.Duration) ([]byte, error) {
	z, dir, secrets, err := s.load(ctx, projectID, idOrName)
	if err != nil {
		return nil, err
	}
	requestID := uuid.NewString()
	ev.Secrets = secrets
	ev.RequestContext = map[string]any{"requestId": requestID, "zambdaId": z.ID, "zambdaName": z.Name, "projectId": projectID, "trigger": "authorizer"}
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	if own := time.Duration(z.TimeoutSeconds) * time.Second; own < timeout {
		timeout = own
	}
	res, err := s.invoke(ctx, z, dir, requestID, payload, timeout)
	if err != nil {
		return nil, fmt.Errorf("%s", failureMessage(runFailure(z, err)))
	}
	return res.Payload, nil
}

// outcome maps the run to the execute answer.
func (s *Service) outcome(z store.Zambda, res runtime.Result, err error) Outcome {
	if err != nil {
		return runFailure(z, err)
	}
	var hr handlerResult
	trimmed := bytes.TrimSpace(res.Payload)
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &hr) == nil && hr.StatusCode != nil {
		o := Outcome{Status: *hr.StatusCode, Headers: hr.Headers, Output: bodyOutput(hr.Body)}
		if o.Status < 100 || o.Status > 599 {
			return failure(502, "zambda %q returned statusCode %d, which is not an HTTP status", z.Name, o.Status)
		}
		return o
	}
	// A handler that returns a plain value: 200 with that value.
	if len(trimmed) == 0 || !json.Valid(trimmed) {
		trimmed = []byte("null")
	}
	return Outcome{Status: 200, Output: trimmed}
}

// bodyOutput is the handler's body: parsed JSON when the string holds
// JSON, else the string itself.
func bodyOutput(body json.RawMessage) json.RawMessage {
	if len(body) == 0 {
		return json.RawMessage("null")
	}
	var s string
	if json.Unmarshal(body, &s) != nil {
		return body // already JSON (an object body, not a string)
	}
	if t := strings.TrimSpace(s); t != "" && json.Valid([]byte(t)) {
		return json.RawMessage(t)
	}
	return body
}

// writeLogs stores the invocation's lines between Lambda-style START, END
// and REPORT lines, in the stream of this function version on this replica
// and day.
func (s *Service) writeLogs(ctx context.Context, z store.Zambda, requestID string, start time.Time, res runtime.Result, runErr error, out Outcome) {
	now := s.now()
	stream := fmt.Sprintf("%s/[$LATEST]%s%s", start.UTC().Format("2006/01/02"), s.cfg.ReplicaID, shortSum(z.FileChecksum))
	lines := []store.LogLine{{At: start, Message: fmt.Sprintf("START RequestId: %s Version: $LATEST", requestID)}}
	for _, l := range res.Logs {
		lines = append(lines, store.LogLine{At: l.Time, Message: l.Text})
	}
	if runErr != nil {
		lines = append(lines, store.LogLine{At: now, Message: fmt.Sprintf("ERROR RequestId: %s %s", requestID, failureMessage(out))})
	}
	lines = append(lines,
		store.LogLine{At: now, Message: fmt.Sprintf("END RequestId: %s", requestID)},
		store.LogLine{At: now, Message: fmt.Sprintf("REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB%s",
			requestID, float64(res.Duration.Microseconds())/1000, res.Duration.Milliseconds()+1, z.MemorySize, res.MaxRSSKB>>10, initNote(res))})
	for i := range lines {
		lines[i].Stream, lines[i].Seq, lines[i].IngestedAt = stream, s.seq.Add(1), now
		if lines[i].At.IsZero() {
			lines[i].At = now
		}
	}
	if err := s.st.AppendLogs(context.WithoutCancel(ctx), z.ProjectID, z.ID, lines); err != nil {
		s.log.WarnContext(ctx, "zambda logs not stored", "zambda", z.ID, "err", err)
	}
}

func initNote(res runtime.Result) string {
	if res.InitDuration > 0 {
		return fmt.Sprintf("\tInit Duration: %.2f ms", float64(res.InitDuration.Microseconds())/1000)
	}
	return ""
}

func shortSum(sum string) string {
	if len(sum) > 8 {
		return sum[:8]
	}
	return sum
}

func failureMessage(o Outcome) string {
	var m struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(o.Output, &m)
	return m.Message
}

// Ward's failure codes in output.code: not HTTP statuses, so the SDK does
// not retry a run that failed inside the function (except busy, 429).
const (
	CodeThrew    = 4210
	CodeCrash    = 4211
	CodeTimeout  = 4212
	CodeOOM      = 4213
	CodeTooLarge = 4214
	CodeInit     = 4215
)

// runFailure maps a failed run to its execute answer.
func runFailure(z store.Zambda, err error) Outcome {
	var re *runtime.Error
	if !errors.As(err, &re) {
		return failureCode(500, 500, "zambda %q could not run: %s", z.Name, clipErr(err))
	}
	switch re.Kind {
	case runtime.KindHandler:
		return failureCode(500, CodeThrew, "%s", re.Message)
	case runtime.KindInit:
		return failureCode(502, CodeInit, "%s", re.Message)
	case runtime.KindCrash:
		return failureCode(502, CodeCrash, "%s", re.Message)
	case runtime.KindTimeout:
		return failureCode(504, CodeTimeout, "%s", re.Message)
	case runtime.KindOOM:
		return failureCode(502, CodeOOM, "%s", re.Message)
	case runtime.KindTooLarge:
		return failureCode(413, CodeTooLarge, "%s", re.Message)
	case runtime.KindBusy:
		return failureCode(429, 429, "%s", re.Message)
	case runtime.KindNoRuntime:
		return failureCode(503, 503, "%s", re.Message)
	}
	return failureCode(500, 500, "%s", re.Message)
}

func failureCode(status, code int, format string, args ...any) Outcome {
	out, _ := json.Marshal(map[string]any{"message": fmt.Sprintf(format, args...), "code": code})
	return Outcome{Status: status, Output: out}
}

// RunSubscription runs a subscription zambda with body (the resource JSON)
// as its event body, for the subscription dispatcher.
func (s *Service) RunSubscription(ctx context.Context, projectID, zambdaID string, body []byte) (int, error) {
	out, err := s.Execute(ctx, projectID, Call{IDOrName: zambdaID, Payload: body, Trigger: "subscription"})
	if err != nil {
		return 0, err
	}
	if out.Status >= 300 {
		return out.Status, fmt.Errorf("zambda answered %d: %s", out.Status, failureMessage(out))
	}
	return out.Status, nil
}

// ProjectOf returns the project of the function with this id (ids are
// globally unique), for public calls by id without a project header.
// Errors: store.ErrNotFound.
func (s *Service) ProjectOf(ctx context.Context, id string) (string, error) {
	return s.st.ZambdaProject(ctx, id)
}
