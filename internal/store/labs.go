package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// LabRoute is a project's connection to a lab (package lab). Details is
// the package's JSON; the store does not read it.
type LabRoute struct {
	ProjectID, RouteGUID string
	LabGUID              string
	AccountNumber        string
	MLLPAddress          string // host:port orders are sent to
	SecretHash           string // hex SHA-256 of the result secret
	Details              []byte
	CreatedAt            time.Time
}

// Lab order states.
const (
	LabOrderSending  = "sending"
	LabOrderAccepted = "accepted"
)

const labRouteCols = `project_id, route_guid, lab_guid, account_number, mllp_address, secret_hash, details, created_at`

func scanLabRoute(sc interface{ Scan(...any) error }) (LabRoute, error) {
	var r LabRoute
	var details string
	var created int64
	if err := sc.Scan(&r.ProjectID, &r.RouteGUID, &r.LabGUID, &r.AccountNumber, &r.MLLPAddress, &r.SecretHash, &details, &created); err != nil {
		return LabRoute{}, err
	}
	r.Details, r.CreatedAt = []byte(details), fromMS(created)
	return r, nil
}

// CreateLabRoute stores a new route. Errors: ErrConflict (the guid is
// taken, in any project).
func (s *Store) CreateLabRoute(ctx context.Context, r LabRoute) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, `INSERT INTO lab_routes (`+labRouteCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ProjectID, r.RouteGUID, r.LabGUID, r.AccountNumber, r.MLLPAddress, r.SecretHash, string(r.Details), ms(r.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("create lab route: %w", s.mapErr(err))
	}
	return nil
}

// GetLabRoute returns the project's route. Errors: ErrNotFound (also for
// another project's route).
func (s *Store) GetLabRoute(ctx context.Context, projectID, guid string) (LabRoute, error) {
	r, err := scanLabRoute(s.queryRow(ctx, `SELECT `+labRouteCols+` FROM lab_routes WHERE project_id = ? AND route_guid = ?`, projectID, guid))
	if errors.Is(err, sql.ErrNoRows) {
		return LabRoute{}, ErrNotFound
	}
	if err != nil {
		return LabRoute{}, fmt.Errorf("get lab route: %w", s.mapErr(err))
	}
	return r, nil
}

// FindLabRoute returns the route guid names, whichever its project: for
// results arriving over MLLP, whose secret the caller then checks.
// Errors: ErrNotFound.
func (s *Store) FindLabRoute(ctx context.Context, guid string) (LabRoute, error) {
	r, err := scanLabRoute(s.queryRow(ctx, `SELECT `+labRouteCols+` FROM lab_routes WHERE route_guid = ?`, guid))
	if errors.Is(err, sql.ErrNoRows) {
		return LabRoute{}, ErrNotFound
	}
	if err != nil {
		return LabRoute{}, fmt.Errorf("find lab route: %w", s.mapErr(err))
	}
	return r, nil
}

// LabResultLookup is what ingesting a lab result reads before anything
// else (LookupLabResult).
type LabResultLookup struct {
	Route LabRoute
	// Stored: the route's project holds the message (its LabResultKey,
	// or a report at the legacy id the lookup named, deleted or not).
	Stored bool
	// Order is the route's project's ServiceRequest at the id the lookup
	// named (deleted or not), when OrderFound.
	Order      Resource
	OrderFound bool
}

// LabResultKey records a lab result message stored: its route and control
// id (MSH-10), unique per project, and its first report.
type LabResultKey struct {
	ProjectID, RouteGUID, ControlID string
	ReportID                        string
}

// LookupLabResult reads, in one query, the route guid names (whichever
// its project: the caller then checks the result's secret), whether that
// project holds the message controlID (its LabResultKey, or, for results
// stored before those were kept, the DiagnosticReport legacyReportID), and
// its ServiceRequest orderID: three reads a result message would otherwise
// make one by one. Nothing of another project is read. Errors: ErrNotFound
// (no such route).
func (s *Store) LookupLabResult(ctx context.Context, guid, controlID, legacyReportID, orderID string) (LabResultLookup, error) {
	var l LabResultLookup
	var details string
	var created int64
	var stored bool
	var oType, oID sql.NullString
	var oVersion, oUpdated sql.NullInt64
	var oDeleted sql.NullBool
	var content []byte
	err := s.queryRow(ctx, `SELECT r.project_id, r.route_guid, r.lab_guid, r.account_number, r.mllp_address, r.secret_hash, r.details, r.created_at,
		EXISTS (SELECT 1 FROM lab_results k WHERE k.project_id = r.project_id AND k.route_guid = r.route_guid AND k.control_id = ?)
			OR EXISTS (SELECT 1 FROM fhir_resources d WHERE d.project_id = r.project_id AND d.resource_type = 'DiagnosticReport' AND d.id = ?),
		o.resource_type, o.id, o.version_id, o.last_updated, o.deleted, `+s.contentSQL("o.content")+`
		FROM lab_routes r LEFT JOIN fhir_resources o ON o.project_id = r.project_id AND o.resource_type = 'ServiceRequest' AND o.id = ?
		WHERE r.route_guid = ?`, controlID, legacyReportID, orderID, guid).Scan(
		&l.Route.ProjectID, &l.Route.RouteGUID, &l.Route.LabGUID, &l.Route.AccountNumber, &l.Route.MLLPAddress, &l.Route.SecretHash, &details, &created,
		&stored, &oType, &oID, &oVersion, &oUpdated, &oDeleted, contentDest{&content})
	if errors.Is(err, sql.ErrNoRows) {
		return LabResultLookup{}, ErrNotFound
	}
	if err != nil {
		return LabResultLookup{}, fmt.Errorf("look up lab result: %w", s.mapErr(err))
	}
	l.Route.Details, l.Route.CreatedAt = []byte(details), fromMS(created)
	l.Stored = stored
	if oID.Valid {
		l.OrderFound = true
		l.Order = Resource{ProjectID: l.Route.ProjectID, Type: oType.String, ID: oID.String, VersionID: oVersion.Int64,
			LastUpdated: fromMS(oUpdated.Int64), Deleted: oDeleted.Bool, Content: content}
	}
	return l, nil
}

// InsertLabResultKeys records lab result messages as stored, in the
// caller's transaction (the one that writes their resources): one
// statement for all of them. Errors: ErrConflict when one is recorded
// already (the same message stored meanwhile).
func (tx *Tx) InsertLabResultKeys(ctx context.Context, keys []LabResultKey) error {
	start := 0
	for _, n := range chunkSizes(len(keys), 64) {
		args := make([]any, 0, 4*n)
		for _, k := range keys[start : start+n] {
			args = append(args, k.ProjectID, k.RouteGUID, k.ControlID, k.ReportID)
		}
		start += n
		if _, err := tx.exec(ctx, `INSERT INTO lab_results (project_id, route_guid, control_id, report_id) VALUES `+rowsOf(4, n), args...); err != nil {
			return fmt.Errorf("record lab results: %w", err)
		}
	}
	return nil
}

// ListLabRoutes lists the project's routes, oldest first.
func (s *Store) ListLabRoutes(ctx context.Context, projectID string) ([]LabRoute, error) {
	rows, err := s.query(ctx, `SELECT `+labRouteCols+` FROM lab_routes WHERE project_id = ? ORDER BY created_at, route_guid`, projectID)
	if err != nil {
		return nil, fmt.Errorf("list lab routes: %w", s.mapErr(err))
	}
	defer rows.Close()
	var out []LabRoute
	for rows.Next() {
		r, err := scanLabRoute(rows)
		if err != nil {
			return nil, fmt.Errorf("list lab routes: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list lab routes: %w", err)
	}
	return out, nil
}

// DeleteLabRoute removes the project's route. Errors: ErrNotFound.
func (s *Store) DeleteLabRoute(ctx context.Context, projectID, guid string) error {
	var n int64
	err := s.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM lab_routes WHERE project_id = ? AND route_guid = ?`, projectID, guid)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("delete lab route: %w", s.mapErr(err))
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// BeginLabOrder records that the order controlID is being sent on route
// and returns its state: LabOrderSending for a new order or one whose
// earlier sending never heard an accept (send it again, same control id),
// LabOrderAccepted when the lab already accepted it (do not send).
func (s *Store) BeginLabOrder(ctx context.Context, projectID, controlID, route string, now time.Time) (string, error) {
	var status string
	err := s.WithTx(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `INSERT INTO lab_orders (project_id, control_id, route_guid, status, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (project_id, control_id) DO NOTHING`,
			projectID, controlID, route, LabOrderSending, ms(now), ms(now)); err != nil {
			return err
		}
		return tx.queryRow(ctx, `SELECT status FROM lab_orders WHERE project_id = ? AND control_id = ?`, projectID, controlID).Scan(&status)
	})
	if err != nil {
		return "", fmt.Errorf("begin lab order: %w", s.mapErr(err))
	}
	return status, nil
}

// AcceptLabOrder marks the order accepted by the lab. Errors: ErrNotFound.
func (s *Store) AcceptLabOrder(ctx context.Context, projectID, controlID string, now time.Time) error {
	var n int64
	err := s.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE lab_orders SET status = ?, updated_at = ? WHERE project_id = ? AND control_id = ?`,
			LabOrderAccepted, ms(now), projectID, controlID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("accept lab order: %w", s.mapErr(err))
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
