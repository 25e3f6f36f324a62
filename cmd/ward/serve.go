package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"time"

	"github.com/wardhealth/ward/internal/activity"
	"github.com/wardhealth/ward/internal/auth"
	"github.com/wardhealth/ward/internal/conversation"
	"github.com/wardhealth/ward/internal/fhir"
	"github.com/wardhealth/ward/internal/fhir/bulk"
	"github.com/wardhealth/ward/internal/iam"
	"github.com/wardhealth/ward/internal/lab"
	"github.com/wardhealth/ward/internal/logsink"
	"github.com/wardhealth/ward/internal/ratelimit"
	"github.com/wardhealth/ward/internal/replica"
	"github.com/wardhealth/ward/internal/reqid"
	"github.com/wardhealth/ward/internal/seal"
	"github.com/wardhealth/ward/internal/server"
	"github.com/wardhealth/ward/internal/smart/authorizer"
	"github.com/wardhealth/ward/internal/smart/oauth"
	"github.com/wardhealth/ward/internal/store"
	"github.com/wardhealth/ward/internal/subscription"
	"github.com/wardhealth/ward/internal/tokens"
	"github.com/wardhealth/ward/internal/z3"
	"github.com/wardhealth/ward/internal/z3/blob"
	"github.com/wardhealth/ward/internal/zambda"
	"github.com/wardhealth/ward/internal/zambda/runtime"
)

// services are the long-lived parts built from config.
type services struct {
	store   *store.Store
	sealer  *seal.Sealer // the master key, checked against the database
	fhir    *fhir.Service
	iam     *iam.Service
	keys    *tokens.Keys
	revoked *tokens.Revocations
	z3      *z3.Service // nil unless open was asked for it
	blobs   blob.Backend
	changes *replica.Watcher // applies other replicas' changes to the above
}

// open opens the store and the services on it; withZ3 also opens Z3's byte
// store, which holds large Binary contents for the FHIR service.
func open(ctx context.Context, c config, log *slog.Logger, withZ3 bool) (*services, error) {
	cache := int64(c.ResourceCacheMB) << 20
	if cache == 0 {
		cache = -1 // none
	}
	st, err := store.OpenWith(ctx, c.dsn(), log, store.Options{MaxConns: c.DatabaseMaxConns, ResourceCacheBytes: cache})
	if err != nil {
		return nil, err
	}
	sealer, err := openSealer(ctx, c, st, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	// The version first: a change committed while the rest loads is
	// applied again, never missed.
	version, err := st.ChangeVersion(ctx)
	if err != nil {
		st.Close()
		return nil, err
	}
	keys, err := tokens.LoadKeys(ctx, st, sealer, time.Now)
	if err != nil {
		st.Close()
		return nil, err
	}
	revoked, err := tokens.LoadRevocations(ctx, st, time.Now)
	if err != nil {
		st.Close()
		return nil, err
	}
	// FHIR decides through IAM's policies and IAM creates users' profiles
	// through FHIR: the policies come first, so neither needs a setter.
	svc := &services{store: st, sealer: sealer, keys: keys, revoked: revoked}
	fcfg := fhir.Config{DefaultCount: c.SearchCount, MaxCount: c.SearchMaxCount, MaxResponseBytes: c.MaxResponse}
	if withZ3 {
		if svc.blobs, err = openBlobs(ctx, c); err != nil {
			st.Close()
			return nil, fmt.Errorf("z3 storage: %w", err)
		}
		if svc.z3, err = z3.New(ctx, z3.Config{PublicURL: c.PublicURL, URLTTL: c.Z3URLTTL, MaxObjectBytes: c.MaxObjectBytes},
			st, sealer, svc.blobs, time.Now, log); err != nil {
			st.Close()
			return nil, err
		}
		// Binary contents over the inline size stream into Z3's internal bucket.
		fcfg.Binaries = svc.z3.Binaries()
	}
	policies := iam.NewPolicies(st, log)
	svc.fhir = fhir.New(st, policies, fcfg, time.Now)
	svc.iam = iam.New(st, c.PublicURL+"/invite/", time.Now, iam.Deps{Policies: policies, Profiles: profileWriter{svc.fhir}, Sealer: sealer, Log: log})
	reloadKeys := func(ctx context.Context) error {
		err := keys.Reload(ctx)
		if errors.Is(err, seal.ErrWrongKey) {
			// Keys sealed after a secrets key rotation: this process keeps
			// the ring it has (and says so) rather than fail every request.
			log.Warn("signing keys added since the secrets key was rotated do not open: restart with the new WARD_SECRETS_KEY", "err", err)
			return nil
		}
		return err
	}
	changes := replica.New(st, version, replica.Apply{
		Revoked: revoked.Add,
		Project: svc.iam.Invalidate,
		Keys:    reloadKeys,
		All: func(ctx context.Context) error {
			svc.iam.InvalidateAll()
			return errors.Join(revoked.Reload(ctx), reloadKeys(ctx))
		},
	}, replica.Config{}, log)
	svc.changes = changes
	return svc, nil
}

// gcPercent is the collector's target unless GOGC is set: the heap may
// grow to five times what is live between collections.
const gcPercent = 400

func serve(ctx context.Context, args []string) error {
	c, err := parseConfig("serve", args)
	if err != nil {
		return err
	}
	sink := logsink.New(os.Stderr)
	defer sink.Close()
	// Lines logged with a request's context carry its id, in every package.
	log := reqid.Logger(slog.NewJSONHandler(sink.Direct(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	accessLog := reqid.Logger(slog.NewJSONHandler(sink.Batched(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	if os.Getenv("GOGC") == "" {
		// The live heap is small (SQLite's page caches are outside it) and
		// a request allocates its rows and response: at the default 100
		// the collector ran often enough to cost 20-35% of a search's CPU
		// (bench/RESULTS.md). GOGC in the environment still wins.
		debug.SetGCPercent(gcPercent)
	}
	// The ports first: a busy one must stop a first start before it
	// creates a project and prints credentials no server then serves.
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	var mllpLn net.Listener
	if c.MLLPAddr != "" {
		if mllpLn, err = net.Listen("tcp", c.MLLPAddr); err != nil {
			return fmt.Errorf("mllp listener: %w", err)
		}
		defer mllpLn.Close()
	}
	var debugLn net.Listener
	if c.DebugAddr != "" {
		if debugLn, err = net.Listen("tcp", c.DebugAddr); err != nil {
			return fmt.Errorf("debug listener: %w", err)
		}
		defer debugLn.Close()
	}
	life := newLifecycle(ctx, log, c.ShutdownGrace)
	life.drain = c.ShutdownDrain
	defer life.closeAll() // when building fails; after a stop, run has closed all

	svc, err := open(ctx, c, log, true)
	if err != nil {
		return err
	}
	life.onClose("store", svc.store.Close)
	if err := bootstrap(ctx, c, svc); err != nil {
		return err
	}
	issuer := auth.NewIssuer(svc.keys.Ring, c.PublicURL, c.PublicURL, time.Now)
	verifier := auth.NewVerifier(svc.keys.Ring, c.PublicURL, []string{c.PublicURL}, svc.revoked, time.Now)
	fhirSvc, z3Svc, blobs := svc.fhir, svc.z3, svc.blobs
	egressAll, egressJWKS, err := egressPolicies(ctx, c, log)
	if err != nil {
		return err
	}
	sb, closeSandbox, err := zambdaSandbox(ctx, c, egressAll, log)
	if err != nil {
		return err
	}
	life.onClose("zambda sandbox", func() error { closeSandbox(); return nil }) // after the pool: its workers are gone by then
	pool, err := runtime.New(runtime.Config{WorkDir: filepath.Join(c.WorkDir, "run"), MaxWorkers: c.ZambdaMaxWorkers,
		ProjectWorkers: c.ZambdaProjectWorkers, Logger: log, Sandbox: sb})
	if err != nil {
		return err
	}
	life.onClose("zambda workers", pool.Close)
	// Each project's requests and invocations of the last hour, this
	// replica's, for the console's dashboard.
	projectActivity := activity.New(time.Now, 0)
	zambdas := zambda.New(zambda.Config{WorkDir: c.WorkDir, CronLease: c.CronLease, Activity: projectActivity}, svc.store, svc.iam, z3Svc, issuer, pool, svc.sealer, time.Now, log)
	life.onClose("zambda log writes", func() error { zambdas.Flush(); return nil }) // before the store closes
	fhirHandler := fhir.NewHandler(fhirSvc, c.fhirURL(), log)
	subs := subscription.New(subscription.Config{MaxAttempts: c.SubMaxAttempts, RetryBase: c.SubRetryBase, RetryMax: c.SubRetryMax,
		Lease: c.SubLease},
		fhirSvc, zambdas, egressAll, time.Now, log)
	subs.Register(fhirHandler)
	exports := bulk.New(bulk.Config{FileResources: c.ExportFileResources, Lease: c.ExportLease}, svc.store, fhirSvc, z3Svc.Exports(), time.Now, log)
	exports.Register(fhirHandler)
	authz := authorizer.New(func(ctx context.Context, projectID, zambdaID string, in authorizer.Input, timeout time.Duration) ([]byte, error) {
		return zambdas.RunAuthorizer(ctx, projectID, zambdaID, zambda.AuthorizerEvent{DatastoreEndpoint: in.DatastoreEndpoint,
			OperationName: in.OperationName, BearerToken: in.BearerToken}, timeout)
	}, authorizer.Config{TTL: c.AuthorizerCacheTTL, Logger: log, RoleExists: func(ctx context.Context, projectID, roleID string) (bool, error) {
		roles, err := svc.store.RolesByID(ctx, projectID, []string{roleID})
		return len(roles) == 1, err
	}})
	authServer, err := oauth.New(oauth.Config{PublicURL: c.PublicURL, FHIRBase: fhirHandler.Base(), TokenTTL: c.TokenTTL,
		Proxies: c.TrustedProxies},
		oauth.Deps{Log: log, Store: svc.store, IAM: svc.iam, Keys: svc.keys, Revoked: svc.revoked, Issuer: issuer,
			Verifier: verifier, FHIR: fhirSvc, Egress: egressJWKS, Now: time.Now})
	if err != nil {
		return err
	}
	// Conversations: each replica fans out its own commits in memory and
	// hears the others' through PostgreSQL NOTIFY.
	chat := conversation.NewLocal(conversation.LocalConfig{TokenTTL: c.ConversationTokenTTL}, conversation.NewHub(), svc.store, svc.store,
		svc.keys.Ring, c.PublicURL, svc.revoked, time.Now, log)
	convs := conversation.New(fhirSvc, chat, time.Now)
	// One process on SQLite counts exactly in memory; replicas on
	// PostgreSQL share their counts in batches.
	var counts ratelimit.Shared
	if svc.store.Dialect() == store.Postgres {
		counts = svc.store
	}
	limiter := ratelimit.New(counts, ratelimit.Config{FlushEvery: c.RateLimitFlush, Log: log})
	smsSvc := newSMS(c, svc, zambdas, egressAll, log)
	payments := newPayment(c, svc, zambdas, egressAll, log)
	rcmSvc := newRCM(c, svc, zambdas, egressAll, log)
	meetings, err := telemedService(c, svc, zambdas, egressAll, log)
	if err != nil {
		return err
	}
	labs := lab.New(lab.Config{AckTimeout: c.LabAckTimeout}, svc.store, fhirSvc, egressAll, log, time.Now)
	srv := server.New(server.Config{PublicURL: c.PublicURL, MaxBodyBytes: c.MaxBodyBytes, RequestTimeout: c.RequestTimeout,
		TransferTimeout: c.TransferTimeout, Version: version,
		ReadConcurrency: readConcurrency(c.ReadConcurrency, svc.store.Dialect()), ZambdaSandbox: sb.Info().Mode,
		CORSOrigins: c.CORSOrigins, RateLimit: c.RateLimit},
		server.Deps{Log: log, AccessLog: accessLog, IAM: svc.iam, OAuth: authServer, Now: time.Now,
			FHIR: fhirHandler, Z3: z3Svc, Zambda: zambdas, Telemed: meetings, Conversations: convs, Authorizer: authz, Fresh: svc.changes.Fresh, Ready: svc.store.Ready,
			Limiter: limiter, Draining: life.Draining,
			SMS: smsSvc, Messaging: []server.MessagingConfig{{Key: "transactionalSMSConfig", Info: smsSvc.Info}},
			ConsoleSessions: svc.store, Sealer: svc.sealer, Activity: projectActivity, Deliveries: svc.store.DeliveryActivity,
			ERx: newERx(c, svc), Fax: newFax(c, svc, zambdas, egressAll, log), Payment: payments, RCM: rcmSvc, Lab: labs})

	// Everything is built: start the parts. Each ends its loop at the stop
	// and is joined before anything closes.
	life.serve("http server", &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}, ln)
	if mllpLn != nil {
		life.worker(func(stop, _ context.Context) {
			if err := labs.Serve(stop, mllpLn); err != nil {
				log.Error("mllp listener stopped", "err", err)
			}
		})
		log.Info("mllp listener (lab results)", "addr", mllpLn.Addr().String())
	}
	if debugLn != nil {
		life.serve("debug server", debugServer(authz, svc.store, srv.ReadStats, subs.Stats(), limiter), debugLn)
		log.Info("debug listener (pprof, metrics)", "addr", debugLn.Addr().String())
	}
	switch b := blobs.(type) {
	case *blob.FS:
		life.worker(func(stop, _ context.Context) {
			sweepZ3(stop, log, 10*time.Minute, "partial uploads", func(_ context.Context, d time.Duration) (int, error) { return b.SweepTemp(d) })
		})
	case *blob.S3:
		life.worker(func(stop, _ context.Context) { sweepZ3(stop, log, 10*time.Minute, "partial uploads", b.SweepUploads) })
	}
	life.worker(func(stop, _ context.Context) { sweepZ3(stop, log, time.Hour, "orphaned blobs", z3Svc.SweepOrphans) })
	life.worker(func(stop, _ context.Context) {
		sweepZ3(stop, log, time.Hour, "Binary contents no version names", fhirSvc.SweepBinaries)
	})
	life.worker(func(stop, _ context.Context) { svc.changes.Run(stop) })
	life.worker(func(stop, _ context.Context) { limiter.Run(stop) })
	life.worker(func(stop, _ context.Context) { chat.Run(stop) })
	// Live streams end when the stop begins, not at the cut.
	life.worker(func(stop, _ context.Context) { <-stop.Done(); chat.Hub().Close() })
	life.worker(func(stop, _ context.Context) { background(stop, log, svc) })
	life.worker(func(stop, _ context.Context) { backfillIndex(stop, log, fhirSvc) })
	life.worker(subs.RunUntil)
	life.worker(func(stop, _ context.Context) { exports.Run(stop) })
	life.worker(zambdas.NewCron().RunUntil)
	log.Info("ward listening", "addr", ln.Addr().String(), "public_url", c.PublicURL, "database", string(svc.store.Dialect()),
		"shutdown_grace", c.ShutdownGrace.String())
	return life.run()
}

// sweepZ3 runs one of Z3's clean-ups every period, each for what is over an
// hour old: what uploads a crash interrupted left behind (never served: an
// object is visible only once complete; temporary files on local disk,
// unfinished multipart uploads on S3), or blobs no object points at (a
// crash between a blob and its row, or a failed delete).
func sweepZ3(ctx context.Context, log *slog.Logger, period time.Duration, what string, sweep func(context.Context, time.Duration) (int, error)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := sweep(ctx, time.Hour); err != nil && ctx.Err() == nil {
			log.Warn("z3: sweep "+what, "err", err)
		} else if n > 0 {
			log.Info("z3: removed "+what, "count", n)
		}
	}
}

// backfillIndex runs the one-time job that indexes composite parameters
// and Location near in a database from before Ward did, retrying while it
// fails.
func backfillIndex(ctx context.Context, log *slog.Logger, f *fhir.Service) {
	for wait := time.Second; ; wait = min(2*wait, time.Minute) {
		start := time.Now()
		n, err := f.BackfillIndex(ctx)
		if err == nil {
			if n > 0 {
				log.Info("indexed composite search parameters and Location near", "resources", n, "took", time.Since(start))
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("index composite search parameters and Location near", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// background refreshes the planner's statistics. (Replicas keep in step
// through svc.changes, not a timer.)
func background(ctx context.Context, log *slog.Logger, svc *services) {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := svc.store.AnalyzeStale(ctx); err != nil && ctx.Err() == nil {
			log.Warn("refresh planner statistics", "err", err)
		}
	}
}

// credentialsFile is what bootstrap writes to admin-credentials.json.
type credentialsFile struct {
	iam.AdminCredentials
	TokenURL      string `json:"tokenUrl"`
	ProjectAPIURL string `json:"projectApiUrl"`
	FHIRAPIURL    string `json:"fhirApiUrl"`
	// Services is the @oystehr/sdk's `services` option: every base URL the
	// SDK calls. An SDK given only two URLs sends the others' calls, with
	// Ward's token, to Oystehr's public hosts.
	Services serviceURLs `json:"services"`
}

// serviceURLs names each SDK service's base URL on this server.
type serviceURLs struct {
	ProjectAPIURL     string `json:"projectApiUrl"`
	FHIRAPIURL        string `json:"fhirApiUrl"`
	TerminologyAPIURL string `json:"terminologyApiUrl"`
	ERxAPIURL         string `json:"erxApiUrl"`
	LabAPIURL         string `json:"labApiUrl"`
	FaxAPIURL         string `json:"faxApiUrl"`
}

// sdkServices gives the SDK's base URLs: the Project API (which also serves
// terminology, rcm, payments...), FHIR, and the erx, lab and fax services
// under their own prefixes, as the SDK keeps them on their own hosts.
func (c config) sdkServices() serviceURLs {
	return serviceURLs{
		ProjectAPIURL:     c.PublicURL + "/v1",
		FHIRAPIURL:        c.fhirURL(),
		TerminologyAPIURL: c.PublicURL + "/v1",
		ERxAPIURL:         c.PublicURL + "/erx/v3",
		LabAPIURL:         c.PublicURL + "/lab/v1",
		FaxAPIURL:         c.PublicURL + "/fax/v1",
	}
}

// bootstrap creates the first project and admin client on first start and
// prints its credentials once.
func bootstrap(ctx context.Context, c config, svc *services) error {
	creds, created, err := svc.iam.Bootstrap(ctx)
	if err != nil || !created {
		return err
	}
	out := credentialsFile{AdminCredentials: creds, TokenURL: c.PublicURL + "/oauth/token",
		ProjectAPIURL: c.PublicURL + "/v1", FHIRAPIURL: c.fhirURL(), Services: c.sdkServices()}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(c.DataDir, "admin-credentials.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Printf("First start: created project and admin client (also saved to %s, mode 0600):\n%s\n", path, b)
	fmt.Printf("Console: %s/console (developers sign in there; invite the first with POST %s/v1/developer/invite)\n", c.PublicURL, c.PublicURL)
	return nil
}

// profileWriter creates invited users' Patient or Practitioner resources.
type profileWriter struct{ fhir *fhir.Service }

func (w profileWriter) CreateProfile(ctx context.Context, projectID string, resource json.RawMessage) (string, error) {
	r, err := w.fhir.SystemCreate(ctx, projectID, resource)
	if err != nil {
		return "", err
	}
	return r.Type + "/" + r.ID, nil
}

// readConcurrency resolves --read-concurrency: 0 means the cores Go runs
// on for SQLite, whose queries run on them (more at once only interleave
// and wait in random order, bench/RESULTS.md), and no limit for
// PostgreSQL, where a read mostly waits on the database server.
func readConcurrency(n int, d store.Dialect) int {
	switch {
	case n < 0:
		return 0
	case n > 0:
		return n
	case d == store.SQLite:
		return goruntime.GOMAXPROCS(0)
	}
	return 0
}
