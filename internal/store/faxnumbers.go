package store

import (
	"context"
	"fmt"
	"time"
)

// FaxNumber is a fax number a project onboarded.
type FaxNumber struct {
	ProjectID string
	Number    string // E.164
	Provider  string
	CreatedAt time.Time
}

// AddFaxNumber records a project's onboarded number. Errors: ErrConflict
// when the project has one already (one per project).
func (s *Store) AddFaxNumber(ctx context.Context, n FaxNumber) error {
	_, err := s.exec(ctx, `INSERT INTO fax_numbers (project_id, number, provider, created_at) VALUES (?, ?, ?, ?)`,
		n.ProjectID, n.Number, n.Provider, ms(n.CreatedAt))
	if err != nil {
		return fmt.Errorf("add fax number: %w", err)
	}
	return nil
}

// FaxNumbers lists the project's numbers, oldest first (none: empty).
func (s *Store) FaxNumbers(ctx context.Context, projectID string) ([]FaxNumber, error) {
	rows, err := s.query(ctx, `SELECT number, provider, created_at FROM fax_numbers WHERE project_id = ? ORDER BY created_at, number`, projectID)
	if err != nil {
		return nil, fmt.Errorf("fax numbers: %w", err)
	}
	defer rows.Close()
	out := []FaxNumber{}
	for rows.Next() {
		n := FaxNumber{ProjectID: projectID}
		var created int64
		if err := rows.Scan(&n.Number, &n.Provider, &created); err != nil {
			return nil, fmt.Errorf("fax numbers: %w", err)
		}
		n.CreatedAt = fromMS(created)
		out = append(out, n)
	}
	return out, rows.Err()
}

// RemoveFaxNumber forgets one of the project's numbers. Errors:
// ErrNotFound when the project has no such number.
func (s *Store) RemoveFaxNumber(ctx context.Context, projectID, number string) error {
	res, err := s.exec(ctx, `DELETE FROM fax_numbers WHERE project_id = ? AND number = ?`, projectID, number)
	return affectedOne(res, err, "remove fax number")
}
