package store

import (
	"context"
	"fmt"
)

// EachVersionContaining calls fn with the content of every version,
// current or older, deleted ones' included, of the project's resources of
// typ whose JSON holds marker (LIKE: a wider match is for fn to tell). It
// reads both tables in one statement; fn must not use the store.
func (s *Store) EachVersionContaining(ctx context.Context, projectID, typ, marker string, fn func(content []byte) error) error {
	like := "%" + marker + "%"
	rows, err := s.query(ctx, `SELECT `+s.contentSQL("content")+` FROM fhir_resources WHERE project_id = ? AND resource_type = ? AND content LIKE ?
		UNION ALL SELECT `+s.contentSQL("content")+` FROM fhir_history WHERE project_id = ? AND resource_type = ? AND content LIKE ?`,
		projectID, typ, like, projectID, typ, like)
	if err != nil {
		return fmt.Errorf("versions of %s: %w", typ, s.mapErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var content []byte
		if err := rows.Scan(&content); err != nil {
			return fmt.Errorf("versions of %s: %w", typ, err)
		}
		if err := fn(content); err != nil {
			return err
		}
	}
	return rows.Err()
}
