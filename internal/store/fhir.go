package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Resource is one version of a FHIR resource as stored.
type Resource struct {
	ProjectID   string
	Type        string
	ID          string
	VersionID   int64
	LastUpdated time.Time
	Deleted     bool
	Method      string // history only: POST, PUT, PATCH or DELETE
	Content     []byte // the resource JSON, with id and meta filled in
}

// IndexRow is one search index value of a resource. Kind picks the table:
// token, string, reference, date, number (also quantity) or uri.
type IndexRow struct {
	Param string
	Kind  string
	// token: System, Code, Display; string: Value (normalised), Exact.
	System, Code, Display string
	Value, Exact          string
	// reference: RefType, RefID, URL.
	RefType, RefID, URL string
	// date: Low and High in unix ms.
	Low, High int64
	// number and quantity: Number with System/Code for the unit.
	Number float64
	// uri
	URI string
	// composite: one combination, a row per component (at most 3) with
	// its Kind and value fields.
	Components []IndexRow
}

const resourceCols = `project_id, resource_type, id, version_id, last_updated, deleted, content`

// historyCols are a version's columns, in fhir_history and fhir_resources.
const historyCols = `project_id, resource_type, id, version_id, last_updated, deleted, method, content`

// The same columns as selected: on SQLite the content comes as a blob
// (see contentDest).
const (
	resourceColsBlob = `project_id, resource_type, id, version_id, last_updated, deleted, CAST(content AS BLOB)`
	historyColsBlob  = `project_id, resource_type, id, version_id, last_updated, deleted, method, CAST(content AS BLOB)`
)

// selectCols is resourceCols (history: historyCols) as this dialect
// selects them.
func (s *Store) selectCols(history bool) string {
	switch {
	case s.dialect == Postgres && history:
		return historyCols
	case s.dialect == Postgres:
		return resourceCols
	case history:
		return historyColsBlob
	}
	return resourceColsBlob
}

// contentSQL is content column col as this dialect selects it.
func (s *Store) contentSQL(col string) string {
	if s.dialect == Postgres {
		return col
	}
	return "CAST(" + col + " AS BLOB)"
}

// contentDest scans a content column into a []byte. SQLite's driver
// copies TEXT into a new string, which []byte() would copy again (a
// search page is tens of KiB): selected as a blob, the content arrives as
// a []byte the driver allocated for this row alone, and is kept as it is
// (database/sql's own conversion would copy it). PostgreSQL's text comes
// as a string and is copied once.
type contentDest struct{ b *[]byte }

func (d contentDest) Scan(src any) error {
	switch v := src.(type) {
	case []byte:
		*d.b = v
	case string:
		*d.b = []byte(v)
	case nil:
		*d.b = nil
	default:
		return fmt.Errorf("resource content: unexpected %T", src)
	}
	return nil
}

func scanResource(row interface{ Scan(...any) error }) (Resource, error) {
	var r Resource
	var updated int64
	if err := row.Scan(&r.ProjectID, &r.Type, &r.ID, &r.VersionID, &updated, &r.Deleted, contentDest{&r.Content}); err != nil {
		return Resource{}, err
	}
	r.LastUpdated = fromMS(updated)
	return r, nil
}

// GetResource returns the current version, deleted or not. On PostgreSQL
// outside a transaction it comes from this replica's resource cache while
// the replica's lease holds (rcache.go says why that is current). Errors:
// ErrNotFound.
func (s *Store) GetResource(ctx context.Context, projectID, typ, id string) (Resource, error) {
	k := rkey{projectID, typ, id}
	cached, hit, t, put := s.cachedResource(k)
	if hit {
		return cached, nil
	}
	r, err := scanResource(s.queryRow(ctx, `SELECT `+s.selectCols(false)+` FROM fhir_resources WHERE project_id = ? AND resource_type = ? AND id = ?`, projectID, typ, id))
	if err != nil {
		return Resource{}, fmt.Errorf("get resource: %w", s.mapErr(err))
	}
	if put {
		s.rs.cache.put(t, r)
	}
	return r, nil
}

// GetResourceForUpdate is GetResource that, on PostgreSQL, also locks the
// row until the transaction ends, so that concurrent writers of one
// resource take turns and each computes its version from the one before
// (without it, READ COMMITTED lets two read the same version and the
// second's PutResource fails with ErrConflict). SQLite has one writer and
// needs no lock. Errors: ErrNotFound.
func (tx *Tx) GetResourceForUpdate(ctx context.Context, projectID, typ, id string) (Resource, error) {
	lock := ""
	if tx.dialect == Postgres {
		lock = " FOR UPDATE"
	}
	r, err := scanResource(tx.queryRow(ctx, `SELECT `+tx.selectCols(false)+` FROM fhir_resources WHERE project_id = ? AND resource_type = ? AND id = ?`+lock, projectID, typ, id))
	if err != nil {
		return Resource{}, fmt.Errorf("get resource for update: %w", tx.mapErr(err))
	}
	return r, nil
}

// GetResources returns the current, undeleted versions of ids (any order).
func (s *Store) GetResources(ctx context.Context, projectID, typ string, ids []string) ([]Resource, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := []any{projectID, typ}
	for _, id := range ids {
		args = append(args, id)
	}
	return s.resources(ctx, len(ids), `SELECT `+s.selectCols(false)+` FROM fhir_resources WHERE project_id = ? AND resource_type = ? AND NOT deleted AND id IN (`+placeholders(len(ids))+`)`, args...)
}

// resources runs q and reads the resources it selects; most is how many
// it can select at most (a LIMIT; 0 if unknown), so the slice is sized once.
func (s *Store) resources(ctx context.Context, most int, q string, args ...any) ([]Resource, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read resources: %w", err)
	}
	defer rows.Close()
	out := make([]Resource, 0, min(most, 100))
	for rows.Next() {
		r, err := scanResource(rows)
		if err != nil {
			return nil, fmt.Errorf("read resources: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// GetVersion returns one version from history. Errors: ErrNotFound.
func (s *Store) GetVersion(ctx context.Context, projectID, typ, id string, version int64) (Resource, error) {
	// The current version is in fhir_resources, older ones in fhir_history.
	r, err := scanResource(s.queryRow(ctx, `SELECT `+s.selectCols(false)+` FROM fhir_resources WHERE project_id = ? AND resource_type = ? AND id = ? AND version_id = ?
		UNION ALL SELECT `+s.selectCols(false)+` FROM fhir_history WHERE project_id = ? AND resource_type = ? AND id = ? AND version_id = ?`,
		projectID, typ, id, version, projectID, typ, id, version))
	if err != nil {
		return Resource{}, fmt.Errorf("get version: %w", s.mapErr(err))
	}
	return r, nil
}

// PutResource writes a new version: the current row (the version it
// replaces moves to fhir_history), its index rows (replacing the old ones)
// and an outbox row, all in the caller's transaction. r.Method names the
// interaction (POST, PUT, PATCH, DELETE).
func (tx *Tx) PutResource(ctx context.Context, r Resource, index []IndexRow) error {
	upd := ms(r.LastUpdated)
	interaction := map[string]string{"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}[r.Method]
	if r.VersionID == 1 && r.Method == "PUT" {
		interaction = "create"
	}
	if tx.dialect == Postgres && r.VersionID == 1 {
		return tx.pgCreate(ctx, r, index, interaction)
	}
	if r.VersionID == 1 {
		if _, err := tx.exec(ctx, `INSERT INTO fhir_resources (`+resourceCols+`, method) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ProjectID, r.Type, r.ID, r.VersionID, upd, r.Deleted, string(r.Content), r.Method); err != nil {
			return fmt.Errorf("insert resource: %w", err)
		}
	} else {
		stale := fmt.Errorf("%w: version %d of %s/%s is no longer current", ErrConflict, r.VersionID-1, r.Type, r.ID)
		if tx.dialect == Postgres {
			return tx.pgUpdate(ctx, r, index, interaction, stale)
		}
		res, err := tx.exec(ctx, `INSERT INTO fhir_history (`+historyCols+`) SELECT `+historyCols+` FROM fhir_resources WHERE project_id = ? AND resource_type = ? AND id = ? AND version_id = ?`,
			r.ProjectID, r.Type, r.ID, r.VersionID-1)
		if err != nil && errors.Is(tx.mapErr(err), ErrConflict) {
			return stale // a concurrent writer moved that version first
		}
		if err := affectedOne(res, err, "keep superseded version"); err != nil {
			// Someone else wrote a version in between: the caller's If-Match
			// or read-modify-write is stale.
			return stale
		}
		res, err = tx.exec(ctx, `UPDATE fhir_resources SET version_id = ?, last_updated = ?, deleted = ?, method = ?, content = ? WHERE project_id = ? AND resource_type = ? AND id = ? AND version_id = ?`,
			r.VersionID, upd, r.Deleted, r.Method, string(r.Content), r.ProjectID, r.Type, r.ID, r.VersionID-1)
		if err := affectedOne(res, err, "update resource"); err != nil {
			return stale
		}
	}
	// Version 1 of an id has no index rows yet (the INSERT above proved
	// the id new): skip the six DELETEs.
	if err := tx.replaceIndex(ctx, r.ProjectID, r.Type, r.ID, index, r.VersionID == 1); err != nil {
		return err
	}
	if _, err := tx.exec(ctx, `INSERT INTO outbox (project_id, resource_type, id, version_id, interaction, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		r.ProjectID, r.Type, r.ID, r.VersionID, interaction, upd); err != nil {
		return fmt.Errorf("insert outbox: %w", err)
	}
	return nil
}

var indexTables = []string{"fhir_idx_token", "fhir_idx_string", "fhir_idx_reference", "fhir_idx_date", "fhir_idx_number", "fhir_idx_uri", "fhir_idx_composite"}

// replaceIndex deletes a resource's index rows and inserts rows, batched per
// table to keep round trips few.
func (tx *Tx) replaceIndex(ctx context.Context, projectID, typ, id string, rows []IndexRow, fresh bool) error {
	for _, t := range indexTables {
		if fresh {
			break
		}
		if _, err := tx.exec(ctx, `DELETE FROM `+t+` WHERE project_id = ? AND resource_type = ? AND id = ?`, projectID, typ, id); err != nil {
			return fmt.Errorf("clear index: %w", err)
		}
	}
	return tx.insertIndex(ctx, projectID, typ, id, rows)
}

// insertIndex adds a resource's index rows.
func (tx *Tx) insertIndex(ctx context.Context, projectID, typ, id string, rows []IndexRow) error {
	return tx.insertIndexMany(ctx, projectID, []indexed{{typ, id, rows}})
}

// indexed is one resource's index rows.
type indexed struct {
	typ, id string
	rows    []IndexRow
}

// indexBatch is one index table's rows, n values each.
type indexBatch struct {
	table, cols string
	n           int
	args        []any
}

// indexBatches lays out the index rows of several resources of a project
// per table, in table order (so statements built from them read the same
// for the same shape).
func indexBatches(projectID string, items []indexed) []*indexBatch {
	batches := map[string]*indexBatch{}
	var typ, id string
	add := func(table, cols string, n int, vals ...any) {
		b := batches[table]
		if b == nil {
			b = &indexBatch{table: table, cols: cols, n: n}
			batches[table] = b
		}
		b.args = append(b.args, projectID, typ, id)
		b.args = append(b.args, vals...)
	}
	for _, it := range items {
		typ, id = it.typ, it.id
		var seq map[string]int // composite rows numbered per parameter
		for _, r := range it.rows {
			switch r.Kind {
			case "token":
				add("fhir_idx_token", "param, system, code, display", 7, r.Param, r.System, r.Code, r.Display)
			case "string":
				add("fhir_idx_string", "param, value, exact", 6, r.Param, r.Value, r.Exact)
			case "reference":
				add("fhir_idx_reference", "param, ref_type, ref_id, url", 7, r.Param, r.RefType, r.RefID, r.URL)
			case "date":
				add("fhir_idx_date", "param, low, high", 6, r.Param, r.Low, r.High)
			case "number", "quantity":
				add("fhir_idx_number", "param, value, system, code", 7, r.Param, r.Number, r.System, r.Code)
			case "uri":
				add("fhir_idx_uri", "param, uri", 5, r.Param, r.URI)
			case "composite":
				if len(r.Components) == 0 || len(r.Components) > 3 {
					continue
				}
				if seq == nil {
					seq = map[string]int{}
				}
				seq[r.Param]++
				add("fhir_idx_composite", compositeCols, 5+7*3, append([]any{r.Param, seq[r.Param]}, compositeValues(r.Components)...)...)
			}
		}
	}
	out := make([]*indexBatch, 0, len(batches))
	for _, b := range batches {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b *indexBatch) int { return strings.Compare(a.table, b.table) })
	return out
}

// insertIndexMany adds the index rows of several resources of a project:
// one statement per table for all of them.
func (tx *Tx) insertIndexMany(ctx context.Context, projectID string, items []indexed) error {
	batches := indexBatches(projectID, items)
	// On SQLite a row is its own key (0015_index_clustered): a value a
	// resource holds twice (a repeated coding) is stored once.
	insert := "INSERT INTO "
	if tx.dialect == SQLite {
		insert = "INSERT OR IGNORE INTO "
	}
	for _, b := range batches {
		table := b.table
		// Stay well under SQLite's 32766 bound parameters per statement.
		per := 900 / b.n
		sizes := []int{}
		if len(items) > 1 {
			// Several resources: rows in chunks of a few fixed sizes, so
			// that the statements stay few (and prepared) whatever the count.
			sizes = chunkSizes(len(b.args)/b.n, per)
		}
		for start := 0; start < len(b.args); {
			n := per
			if len(sizes) > 0 {
				n, sizes = sizes[0], sizes[1:]
			}
			end := min(start+n*b.n, len(b.args))
			chunk := b.args[start:end]
			start = end
			rowsN := len(chunk) / b.n
			ph := "(" + placeholders(b.n) + ")"
			values := strings.TrimSuffix(strings.Repeat(ph+",", rowsN), ",")
			if _, err := tx.exec(ctx, insert+table+` (project_id, resource_type, id, `+b.cols+`) VALUES `+values, chunk...); err != nil {
				return fmt.Errorf("write index %s: %w", table, err)
			}
		}
	}
	return nil
}

// compositeCols are fhir_idx_composite's columns (0019) after the
// resource's: param, the row's number, then 7 a component.
const compositeCols = "param, seq, s1, c1, t1, x1, n1, lo1, hi1, s2, c2, t2, x2, n2, lo2, hi2, s3, c3, t3, x3, n3, lo3, hi3"

// compositeValues lays out up to 3 components in compositeCols' order
// (after param), each in the columns of its kind.
func compositeValues(comps []IndexRow) []any {
	out := make([]any, 0, 21)
	for i := range 3 {
		var c IndexRow
		if i < len(comps) {
			c = comps[i]
		}
		var s, code, t, x string
		var n float64
		var lo, hi int64
		switch c.Kind {
		case "token":
			s, code, t = c.System, c.Code, c.Display
		case "reference":
			s, code, t = c.RefType, c.RefID, c.URL
		case "string":
			t, x = c.Value, c.Exact
		case "date":
			lo, hi = c.Low, c.High
		case "number", "quantity":
			n, s, code = c.Number, c.System, c.Code
		case "uri":
			t = c.URI
		}
		out = append(out, s, code, t, x, n, lo, hi)
	}
	return out
}

// HistoryFilter selects history rows: a whole project, a type, or one resource.
type HistoryFilter struct {
	Type, ID string
	Since    time.Time // zero: no bound
	At       time.Time // zero: no bound; else versions current at that time are not computed, only last_updated <= At
	Count    int
	Offset   int
}

// History returns versions newest first and the total count.
func (s *Store) History(ctx context.Context, projectID string, f HistoryFilter) ([]Resource, int, error) {
	where := []string{"project_id = ?"}
	args := []any{projectID}
	if f.Type != "" {
		where = append(where, "resource_type = ?")
		args = append(args, f.Type)
	}
	if f.ID != "" {
		where = append(where, "id = ?")
		args = append(args, f.ID)
	}
	if !f.Since.IsZero() {
		where = append(where, "last_updated >= ?")
		args = append(args, ms(f.Since))
	}
	if !f.At.IsZero() {
		where = append(where, "last_updated <= ?")
		args = append(args, ms(f.At))
	}
	w := strings.Join(where, " AND ")
	// Superseded versions are in fhir_history, current ones in fhir_resources.
	both := append(append([]any{}, args...), args...)
	var total int
	if err := s.queryRow(ctx, `SELECT (SELECT COUNT(*) FROM fhir_history WHERE `+w+`) + (SELECT COUNT(*) FROM fhir_resources WHERE `+w+`)`, both...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count history: %w", s.mapErr(err))
	}
	q := `SELECT ` + s.selectCols(true) + ` FROM fhir_history WHERE ` + w + ` UNION ALL SELECT ` + s.selectCols(true) + ` FROM fhir_resources WHERE ` + w +
		fmt.Sprintf(` ORDER BY last_updated DESC, version_id DESC, id LIMIT %d OFFSET %d`, f.Count, f.Offset)
	rows, err := s.query(ctx, q, both...)
	if err != nil {
		return nil, 0, fmt.Errorf("history: %w", err)
	}
	defer rows.Close()
	var out []Resource
	for rows.Next() {
		var r Resource
		var updated int64
		if err := rows.Scan(&r.ProjectID, &r.Type, &r.ID, &r.VersionID, &updated, &r.Deleted, &r.Method, contentDest{&r.Content}); err != nil {
			return nil, 0, fmt.Errorf("history: %w", err)
		}
		r.LastUpdated = fromMS(updated)
		out = append(out, r)
	}
	return out, total, rows.Err()
}

// OutboxEvent is a committed change waiting for its consumers.
type OutboxEvent struct {
	Seq         int64
	ProjectID   string
	Type, ID    string
	VersionID   int64
	Interaction string // create, update, delete
	CreatedAt   time.Time
}

// OutboxAfter lists events after seq, oldest first.
func (s *Store) OutboxAfter(ctx context.Context, seq int64, limit int) ([]OutboxEvent, error) {
	rows, err := s.query(ctx, fmt.Sprintf(`SELECT seq, project_id, resource_type, id, version_id, interaction, created_at FROM outbox WHERE seq > ? ORDER BY seq LIMIT %d`, limit), seq)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxEvent
	for rows.Next() {
		var e OutboxEvent
		var at int64
		if err := rows.Scan(&e.Seq, &e.ProjectID, &e.Type, &e.ID, &e.VersionID, &e.Interaction, &at); err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		e.CreatedAt = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
