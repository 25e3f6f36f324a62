package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// On PostgreSQL a write's statements each cost a round trip and, for the
// server, a parse-bind-execute cycle: a create was ten of them (resource,
// up to seven index tables, outbox, with begin and commit), and that
// protocol work, not the rows, was most of PostgreSQL's CPU per create
// (bench/RESULTS.md, issue 28). pgWrite does a version's whole write in one
// statement of fixed text: the index rows travel as one array per column
// (unnest), so the statement is prepared once per connection whatever the
// resource holds.

// pgIndexArrays are a version's index rows as column arrays, per table.
type pgIndexArrays struct {
	tokParam, tokSystem, tokCode, tokDisplay []string
	strParam, strValue, strExact             []string
	refParam, refType, refID, refURL         []string
	dateParam                                []string
	dateLow, dateHigh                        []int64
	numParam, numSystem, numCode             []string
	numValue                                 []float64
	uriParam, uriURI                         []string
	// composite: param, seq, then per component s, c, t, x, n, lo, hi.
	compParam []string
	compSeq   []int32
	compS     [3][]string
	compC     [3][]string
	compT     [3][]string
	compX     [3][]string
	compN     [3][]float64
	compLo    [3][]int64
	compHi    [3][]int64
	// ord is, in a batch of creates (fhir_pg_batch.go), each row's
	// resource (1-based), per table in pgIndexCTEs' order.
	ord [7][]int32
}

func newPGIndexArrays(rows []IndexRow) *pgIndexArrays {
	a := emptyPGIndexArrays()
	a.add(rows, 0)
	return a
}

func emptyPGIndexArrays() *pgIndexArrays {
	a := &pgIndexArrays{}
	// Non-nil empty slices: pgx sends nil as NULL, and unnest(NULL) would
	// need a cast per column; an empty array is simply no rows.
	for _, p := range []*[]string{&a.tokParam, &a.tokSystem, &a.tokCode, &a.tokDisplay, &a.strParam, &a.strValue, &a.strExact,
		&a.refParam, &a.refType, &a.refID, &a.refURL, &a.dateParam, &a.numParam, &a.numSystem, &a.numCode, &a.uriParam, &a.uriURI, &a.compParam} {
		*p = []string{}
	}
	a.dateLow, a.dateHigh, a.numValue, a.compSeq = []int64{}, []int64{}, []float64{}, []int32{}
	for i := range 3 {
		a.compS[i], a.compC[i], a.compT[i], a.compX[i] = []string{}, []string{}, []string{}, []string{}
		a.compN[i], a.compLo[i], a.compHi[i] = []float64{}, []int64{}, []int64{}
	}
	for i := range a.ord {
		a.ord[i] = []int32{}
	}
	return a
}

// add appends one resource's rows; ord is its place in a batch (0 alone).
func (a *pgIndexArrays) add(rows []IndexRow, ord int32) {
	var seq map[string]int32
	for _, r := range rows {
		t := -1 // the table, in pgIndexCTEs' order
		switch r.Kind {
		case "token":
			t = 0
			a.tokParam, a.tokSystem, a.tokCode, a.tokDisplay = append(a.tokParam, r.Param), append(a.tokSystem, r.System), append(a.tokCode, r.Code), append(a.tokDisplay, r.Display)
		case "string":
			t = 1
			a.strParam, a.strValue, a.strExact = append(a.strParam, r.Param), append(a.strValue, r.Value), append(a.strExact, r.Exact)
		case "reference":
			t = 2
			a.refParam, a.refType, a.refID, a.refURL = append(a.refParam, r.Param), append(a.refType, r.RefType), append(a.refID, r.RefID), append(a.refURL, r.URL)
		case "date":
			t = 3
			a.dateParam, a.dateLow, a.dateHigh = append(a.dateParam, r.Param), append(a.dateLow, r.Low), append(a.dateHigh, r.High)
		case "number", "quantity":
			t = 4
			a.numParam, a.numValue, a.numSystem, a.numCode = append(a.numParam, r.Param), append(a.numValue, r.Number), append(a.numSystem, r.System), append(a.numCode, r.Code)
		case "uri":
			t = 5
			a.uriParam, a.uriURI = append(a.uriParam, r.Param), append(a.uriURI, r.URI)
		case "composite":
			if len(r.Components) == 0 || len(r.Components) > 3 {
				continue
			}
			t = 6
			if seq == nil {
				seq = map[string]int32{}
			}
			seq[r.Param]++
			a.compParam, a.compSeq = append(a.compParam, r.Param), append(a.compSeq, seq[r.Param])
			// compositeValues lays the components out as the SQLite path
			// stores them: 7 values a component.
			v := compositeValues(r.Components)
			for i := range 3 {
				o := v[i*7:]
				a.compS[i] = append(a.compS[i], o[0].(string))
				a.compC[i] = append(a.compC[i], o[1].(string))
				a.compT[i] = append(a.compT[i], o[2].(string))
				a.compX[i] = append(a.compX[i], o[3].(string))
				a.compN[i] = append(a.compN[i], o[4].(float64))
				a.compLo[i] = append(a.compLo[i], o[5].(int64))
				a.compHi[i] = append(a.compHi[i], o[6].(int64))
			}
		}
		if t >= 0 {
			a.ord[t] = append(a.ord[t], ord)
		}
	}
}

// args are the arrays in pgIndexCTEs' parameter order.
func (a *pgIndexArrays) args() []any {
	out := []any{a.tokParam, a.tokSystem, a.tokCode, a.tokDisplay,
		a.strParam, a.strValue, a.strExact,
		a.refParam, a.refType, a.refID, a.refURL,
		a.dateParam, a.dateLow, a.dateHigh,
		a.numParam, a.numValue, a.numSystem, a.numCode,
		a.uriParam, a.uriURI,
		a.compParam, a.compSeq}
	for i := range 3 {
		out = append(out, a.compS[i], a.compC[i], a.compT[i], a.compX[i], a.compN[i], a.compLo[i], a.compHi[i])
	}
	return out
}

// keyedArgs are the arrays in pgBatchIndexCTEs' parameter order: each
// table's resource ordinals, then its arrays as in args.
func (a *pgIndexArrays) keyedArgs() []any {
	flat := a.args()
	out := make([]any, 0, len(flat)+len(a.ord))
	for t, n := range pgIndexTableArrays {
		out = append(out, a.ord[t])
		out = append(out, flat[:n]...)
		flat = flat[n:]
	}
	return out
}

// pgIndexTableArrays is how many arrays args holds per table.
var pgIndexTableArrays = [7]int{4, 3, 4, 3, 4, 2, 23}

// pgIndexCTEs are the CTEs inserting every index table's rows from the
// arrays, whose parameters start at $first; the resource key is $1-$3.
func pgIndexCTEs(first int) string { return indexCTEs(first, false) }

// pgBatchIndexCTEs are pgIndexCTEs for a batch of resources whose keys
// are the arrays $1-$3: each table's rows come with an array of their
// resource's place in them (keyedArgs).
func pgBatchIndexCTEs(first int) string { return indexCTEs(first, true) }

func indexCTEs(first int, keyed bool) string {
	n := first
	p := func(typ string) string {
		s := fmt.Sprintf("$%d::%s[]", n, typ)
		n++
		return s
	}
	var b strings.Builder
	cte := func(name, table, cols string, types ...string) {
		if keyed {
			ord := p("int4")
			ps := make([]string, len(types))
			cs := make([]string, len(types)) // u's columns after o
			us := make([]string, len(types))
			for i, t := range types {
				ps[i], cs[i], us[i] = p(t), fmt.Sprintf("c%d", i), fmt.Sprintf("u.c%d", i)
			}
			fmt.Fprintf(&b, ", %s AS (INSERT INTO %s (project_id, resource_type, id, %s) SELECT ($1::text[])[u.o], ($2::text[])[u.o], ($3::text[])[u.o], %s FROM unnest(%s, %s) AS u(o, %s))",
				name, table, cols, strings.Join(us, ", "), ord, strings.Join(ps, ", "), strings.Join(cs, ", "))
			return
		}
		ps := make([]string, len(types))
		for i, t := range types {
			ps[i] = p(t)
		}
		fmt.Fprintf(&b, ", %s AS (INSERT INTO %s (project_id, resource_type, id, %s) SELECT $1, $2, $3, u.* FROM unnest(%s) AS u)",
			name, table, cols, strings.Join(ps, ", "))
	}
	cte("it", "fhir_idx_token", "param, system, code, display", "text", "text", "text", "text")
	cte("ist", "fhir_idx_string", "param, value, exact", "text", "text", "text")
	cte("ir", "fhir_idx_reference", "param, ref_type, ref_id, url", "text", "text", "text", "text")
	cte("idt", "fhir_idx_date", "param, low, high", "text", "int8", "int8")
	cte("inu", "fhir_idx_number", "param, value, system, code", "text", "float8", "text", "text")
	cte("iu", "fhir_idx_uri", "param, uri", "text", "text")
	types := []string{"text", "int4"}
	for range 3 {
		types = append(types, "text", "text", "text", "text", "float8", "int8", "int8")
	}
	cte("ic", "fhir_idx_composite", compositeCols, types...)
	return b.String()
}

// pgCreateSQL inserts version 1 of a resource, its index rows and its
// outbox row: $1-$8 the resource (resourceCols, method), $9 the outbox
// interaction, then the index arrays.
var pgCreateSQL = `WITH r AS (INSERT INTO fhir_resources (` + resourceCols + `, method) VALUES ($1, $2, $3, $4, $5, $6, $7, $8))` +
	pgIndexCTEs(10) +
	` INSERT INTO outbox (project_id, resource_type, id, version_id, interaction, created_at) VALUES ($1, $2, $3, $4, $9, $5)`

// pgCreateAuditSQL is pgCreateSQL that also appends the request's audit
// event: $10 onwards the audit row (auditCols' order), then the index arrays.
var pgCreateAuditSQL = `WITH r AS (INSERT INTO fhir_resources (` + resourceCols + `, method) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)),` +
	` o AS (INSERT INTO outbox (project_id, resource_type, id, version_id, interaction, created_at) VALUES ($1, $2, $3, $4, $9, $5))` +
	pgIndexCTEs(19) +
	` INSERT INTO audit_events (project_id, at, request_id, principal_kind, principal_id, action, resource, outcome, detail) VALUES ($10, $11, $12, $13, $14, $15, $16, $17, $18)`

// CreateResource writes version 1 of a new resource (r.VersionID 1), its
// index rows, its outbox row and the audit event ctx carries, as one
// transaction: PutResource in WithReplayableTx. On PostgreSQL, outside a
// transaction, that is one statement in autocommit: BEGIN, the audit
// INSERT and COMMIT were each a round trip and a command for the server,
// ~50-70 µs of PostgreSQL's CPU apiece on a 2 vCPU machine, a quarter of
// what the create statement itself costs (bench/RESULTS.md, issue 28).
// Concurrent creates share that statement and its commit (newCreateBatcher).
// It returns once a commit holds r. Errors: ErrConflict if the id exists.
func (s *Store) CreateResource(ctx context.Context, r Resource, index []IndexRow) error {
	if s.dialect != Postgres || s.InTx() || r.VersionID != 1 {
		return s.WithReplayableTx(ctx, func(tx *Tx) error { return tx.PutResource(ctx, r, index) })
	}
	c := &queuedCreate{ctx: ctx, s: s, r: r, index: index}
	if a, ok := ctx.Value(auditKey{}).(*PendingAudit); ok && !a.Written() {
		c.audit = a
	}
	if s.creates == nil {
		return s.createOne(c)
	}
	return s.creates.Do(c)
}

// createOne is CreateResource on PostgreSQL for one resource alone.
func (s *Store) createOne(c *queuedCreate) error {
	ctx, r, index := c.ctx, c.r, c.index
	interaction := "create"
	query := pgCreateSQL
	args := []any{r.ProjectID, r.Type, r.ID, r.VersionID, ms(r.LastUpdated), r.Deleted, string(r.Content), r.Method, interaction}
	a := c.audit
	if a != nil {
		e := a.Event
		query = pgCreateAuditSQL
		args = append(args, e.ProjectID, ms(e.At), e.RequestID, e.PrincipalKind, e.PrincipalID, e.Action, e.Resource, e.Outcome, e.Detail)
	}
	args = append(args, newPGIndexArrays(index).args()...)
	ctx = s.stmtContext(ctx)
	_, err := s.write.ExecContext(ctx, query, args...)
	if s.retryable(err) {
		_, err = s.write.ExecContext(ctx, query, args...)
	}
	if err != nil {
		return fmt.Errorf("insert resource: %w", s.mapErr(err))
	}
	if a != nil {
		a.written.Store(true)
	}
	return nil
}

// pgCreate is PutResource's version 1 on PostgreSQL, in one statement.
func (tx *Tx) pgCreate(ctx context.Context, r Resource, index []IndexRow, interaction string) error {
	args := append([]any{r.ProjectID, r.Type, r.ID, r.VersionID, ms(r.LastUpdated), r.Deleted, string(r.Content), r.Method, interaction},
		newPGIndexArrays(index).args()...)
	if _, err := tx.writer().ExecContext(tx.stmtContext(ctx), pgCreateSQL, args...); err != nil {
		return fmt.Errorf("insert resource: %w", tx.mapErr(err))
	}
	return nil
}

// pgUpdateSQL writes version $4 over version $4-1: the old version moves to
// fhir_history, the current row is updated, the index rows are replaced
// and the outbox row added, in one statement. Its two counts say whether
// the old version was still current (each 1, else the caller's view is
// stale and its transaction is rolled back). Every CTE works on the
// statement's snapshot, so the DELETEs see only the old index rows and the
// history copy the old version.
var pgUpdateSQL = `WITH h AS (INSERT INTO fhir_history (` + historyCols + `) SELECT ` + historyCols +
	` FROM fhir_resources WHERE project_id = $1 AND resource_type = $2 AND id = $3 AND version_id = $4 - 1 RETURNING 1),` +
	` u AS (UPDATE fhir_resources SET version_id = $4, last_updated = $5, deleted = $6, content = $7, method = $8` +
	` WHERE project_id = $1 AND resource_type = $2 AND id = $3 AND version_id = $4 - 1 RETURNING 1)` +
	pgIndexDeletes() + pgIndexCTEs(10) +
	`, o AS (INSERT INTO outbox (project_id, resource_type, id, version_id, interaction, created_at) VALUES ($1, $2, $3, $4, $9, $5))` +
	fmt.Sprintf(` SELECT (SELECT count(*) FROM h), (SELECT count(*) FROM u) FROM pg_notify($%d, $%d)`, pgUpdateNotify, pgUpdateNotify+1)

// pgUpdateNotify numbers pgUpdateSQL's announcement of the write (the
// channel, then the payload) to the replicas' resource caches: after
// the index arrays. Sent at commit, not at all on rollback.
var pgUpdateNotify = 10 + len(newPGIndexArrays(nil).args())

// pgIndexDeletes are CTEs deleting a resource's index rows ($1-$3).
func pgIndexDeletes() string {
	var b strings.Builder
	for i, t := range indexTables {
		fmt.Fprintf(&b, ", d%d AS (DELETE FROM %s WHERE project_id = $1 AND resource_type = $2 AND id = $3)", i, t)
	}
	return b.String()
}

// pgUpdate is PutResource's later versions on PostgreSQL, in one statement.
func (tx *Tx) pgUpdate(ctx context.Context, r Resource, index []IndexRow, interaction string, stale error) error {
	args := append([]any{r.ProjectID, r.Type, r.ID, r.VersionID, ms(r.LastUpdated), r.Deleted, string(r.Content), r.Method, interaction},
		newPGIndexArrays(index).args()...)
	args = append(args, tx.rchannel, evictPayload(rkey{r.ProjectID, r.Type, r.ID}))
	var moved, updated int
	err := tx.writer().QueryRowContext(tx.stmtContext(ctx), pgUpdateSQL, args...).Scan(&moved, &updated)
	if err != nil {
		if errors.Is(tx.mapErr(err), ErrConflict) {
			return stale // a concurrent writer moved that version first
		}
		return fmt.Errorf("update resource: %w", tx.mapErr(err))
	}
	if moved != 1 || updated != 1 {
		return stale
	}
	if tx.evicted != nil {
		*tx.evicted = append(*tx.evicted, rkey{r.ProjectID, r.Type, r.ID})
	}
	return nil
}
