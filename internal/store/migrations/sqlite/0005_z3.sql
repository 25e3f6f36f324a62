-- Z3 object storage: buckets and object metadata per project. The bytes live
-- in a blob backend under blob_key; a new upload gets a new blob_key, so the
-- row switches atomically from the old bytes to the new ones.
CREATE TABLE z3_buckets (
  project_id TEXT NOT NULL,
  name TEXT NOT NULL,
  id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (project_id, name)
);

CREATE TABLE z3_objects (
  project_id TEXT NOT NULL,
  bucket TEXT NOT NULL,
  path TEXT NOT NULL,
  blob_key TEXT NOT NULL,
  size INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (project_id, bucket, path)
);

-- Random keys the server generates once and every replica shares (the
-- presigned-URL HMAC key, ...).
CREATE TABLE server_secrets (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
