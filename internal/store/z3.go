package store

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Bucket is a Z3 bucket of a project.
type Bucket struct {
	ProjectID string
	Name      string
	ID        string
	CreatedAt time.Time
}

// Object is the metadata of one Z3 object; its bytes are in the blob
// backend under BlobKey.
type Object struct {
	ProjectID   string
	Bucket      string
	Path        string
	BlobKey     string
	Size        int64
	ContentType string
	SHA256      string // hex
	UpdatedAt   time.Time
}

// CreateBucket inserts b. Errors: ErrConflict if the project has one of that name.
func (s *Store) CreateBucket(ctx context.Context, b Bucket) error {
	if _, err := s.exec(ctx, `INSERT INTO z3_buckets (project_id, name, id, created_at) VALUES (?, ?, ?, ?)`,
		b.ProjectID, b.Name, b.ID, ms(b.CreatedAt)); err != nil {
		return fmt.Errorf("create bucket: %w", err)
	}
	return nil
}

// GetBucket returns one bucket. Errors: ErrNotFound.
func (s *Store) GetBucket(ctx context.Context, projectID, name string) (Bucket, error) {
	b := Bucket{ProjectID: projectID, Name: name}
	var created int64
	if err := s.queryRow(ctx, `SELECT id, created_at FROM z3_buckets WHERE project_id = ? AND name = ?`, projectID, name).
		Scan(&b.ID, &created); err != nil {
		return Bucket{}, fmt.Errorf("get bucket: %w", s.mapErr(err))
	}
	b.CreatedAt = fromMS(created)
	return b, nil
}

// ListBuckets returns the project's buckets by name.
func (s *Store) ListBuckets(ctx context.Context, projectID string) ([]Bucket, error) {
	rows, err := s.query(ctx, `SELECT name, id, created_at FROM z3_buckets WHERE project_id = ? ORDER BY name`, projectID)
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	defer rows.Close()
	var out []Bucket
	for rows.Next() {
		b := Bucket{ProjectID: projectID}
		var created int64
		if err := rows.Scan(&b.Name, &b.ID, &created); err != nil {
			return nil, fmt.Errorf("list buckets: %w", err)
		}
		b.CreatedAt = fromMS(created)
		out = append(out, b)
	}
	return out, rows.Err()
}

// DeleteBucket removes an empty bucket. Errors: ErrNotFound; ErrConflict if
// it still holds objects.
func (s *Store) DeleteBucket(ctx context.Context, projectID, name string) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		var n int64
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM z3_objects WHERE project_id = ? AND bucket = ?`, projectID, name).Scan(&n); err != nil {
			return fmt.Errorf("delete bucket: %w", tx.mapErr(err))
		}
		if n > 0 {
			return fmt.Errorf("delete bucket: %d objects remain: %w", n, ErrConflict)
		}
		res, err := tx.exec(ctx, `DELETE FROM z3_buckets WHERE project_id = ? AND name = ?`, projectID, name)
		if err != nil {
			return fmt.Errorf("delete bucket: %w", err)
		}
		if k, _ := res.RowsAffected(); k == 0 {
			return fmt.Errorf("delete bucket: %w", ErrNotFound)
		}
		return nil
	})
}

// PutObject records o as the current object at its path, in a bucket that
// must exist, and returns the blob key it replaced ("" if none): the caller
// deletes that blob once this has committed. Errors: ErrNotFound (no bucket).
func (s *Store) PutObject(ctx context.Context, o Object) (replaced string, err error) {
	err = s.WithTx(ctx, func(tx *Tx) error {
		var id string
		if err := tx.queryRow(ctx, `SELECT id FROM z3_buckets WHERE project_id = ? AND name = ?`, o.ProjectID, o.Bucket).Scan(&id); err != nil {
			return fmt.Errorf("put object: bucket: %w", tx.mapErr(err))
		}
		replaced = ""
		if err := tx.queryRow(ctx, `SELECT blob_key FROM z3_objects WHERE project_id = ? AND bucket = ? AND path = ?`,
			o.ProjectID, o.Bucket, o.Path).Scan(&replaced); err != nil {
			if err = tx.mapErr(err); !isNotFound(err) {
				return fmt.Errorf("put object: %w", err)
			}
		}
		_, err := tx.exec(ctx, `INSERT INTO z3_objects (project_id, bucket, path, blob_key, size, content_type, sha256, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (project_id, bucket, path) DO UPDATE SET blob_key = excluded.blob_key, size = excluded.size,
			content_type = excluded.content_type, sha256 = excluded.sha256, updated_at = excluded.updated_at`,
			o.ProjectID, o.Bucket, o.Path, o.BlobKey, o.Size, o.ContentType, o.SHA256, ms(o.UpdatedAt))
		if err != nil {
			return fmt.Errorf("put object: %w", err)
		}
		return nil
	})
	return replaced, err
}

const objectCols = `project_id, bucket, path, blob_key, size, content_type, sha256, updated_at`

func scanObject(row interface{ Scan(...any) error }) (Object, error) {
	var o Object
	var updated int64
	if err := row.Scan(&o.ProjectID, &o.Bucket, &o.Path, &o.BlobKey, &o.Size, &o.ContentType, &o.SHA256, &updated); err != nil {
		return Object{}, err
	}
	o.UpdatedAt = fromMS(updated)
	return o, nil
}

// GetObject returns one object's metadata. Errors: ErrNotFound.
func (s *Store) GetObject(ctx context.Context, projectID, bucket, path string) (Object, error) {
	o, err := scanObject(s.queryRow(ctx, `SELECT `+objectCols+` FROM z3_objects WHERE project_id = ? AND bucket = ? AND path = ?`,
		projectID, bucket, path))
	if err != nil {
		return Object{}, fmt.Errorf("get object: %w", s.mapErr(err))
	}
	return o, nil
}

// BlobInUse reports whether an object of the project points at the blob key.
func (s *Store) BlobInUse(ctx context.Context, projectID, key string) (bool, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM z3_objects WHERE project_id = ? AND blob_key = ?`, projectID, key).Scan(&n); err != nil {
		return false, fmt.Errorf("blob in use: %w", s.mapErr(err))
	}
	return n > 0, nil
}

// ListObjects returns the bucket's objects whose path starts with prefix, by
// path, at most limit of them (0: all).
func (s *Store) ListObjects(ctx context.Context, projectID, bucket, prefix string, limit int) ([]Object, error) {
	q := `SELECT ` + objectCols + ` FROM z3_objects WHERE project_id = ? AND bucket = ?`
	args := []any{projectID, bucket}
	if prefix != "" {
		// substr counts characters on both databases; LIKE would need
		// escaping and is case-insensitive on SQLite.
		q += ` AND substr(path, 1, ?) = ?`
		args = append(args, utf8.RuneCountInString(prefix), prefix)
	}
	q += ` ORDER BY path`
	if limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit)
	}
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	defer rows.Close()
	var out []Object
	for rows.Next() {
		o, err := scanObject(rows)
		if err != nil {
			return nil, fmt.Errorf("list objects: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// DeleteObjects removes the objects at paths and returns their blob keys,
// for the caller to delete after the commit. Missing paths are skipped.
func (s *Store) DeleteObjects(ctx context.Context, projectID, bucket string, paths []string) ([]string, error) {
	var keys []string
	err := s.WithTx(ctx, func(tx *Tx) error {
		for _, p := range paths {
			var key string
			err := tx.queryRow(ctx, `DELETE FROM z3_objects WHERE project_id = ? AND bucket = ? AND path = ? RETURNING blob_key`,
				projectID, bucket, p).Scan(&key)
			if err = tx.mapErr(err); err != nil {
				if isNotFound(err) {
					continue
				}
				return fmt.Errorf("delete object: %w", err)
			}
			keys = append(keys, key)
		}
		return nil
	})
	return keys, err
}

// ServerSecret returns the shared secret called name, sealed with the
// master key, storing gen() first if there is none yet; every replica
// gets the same value. A value an older release stored in plaintext is an
// error until a start seals it (seal.Setup).
func (s *Store) ServerSecret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	fresh, err := gen()
	if err != nil {
		return nil, fmt.Errorf("server secret %s: %w", name, err)
	}
	if _, err := s.exec(ctx, `INSERT INTO server_secrets (name, sealed) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, fresh); err != nil {
		return nil, fmt.Errorf("server secret %s: %w", name, err)
	}
	return s.GetServerSecret(ctx, name)
}

// GetServerSecret returns the sealed server secret called name. Errors:
// ErrNotFound (also for a value still in plaintext).
func (s *Store) GetServerSecret(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	if err := s.queryRow(ctx, `SELECT sealed FROM server_secrets WHERE name = ? AND sealed IS NOT NULL`, name).Scan(&v); err != nil {
		return nil, fmt.Errorf("server secret %s: %w", name, s.mapErr(err))
	}
	return v, nil
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
