-- Composite search parameters (Observation?code-value-quantity=...): one row
-- per combination of component values taken from the same element, so that
-- the components of a match belong together. Component i (1-3) keeps its
-- value in the columns of its type: token s=system c=code t=display;
-- reference s=type c=id t=url; string t=normalised x=exact; date lo/hi;
-- number and quantity n=value s=system c=unit; uri t.
-- Resources written before this table existed get their rows (and
-- Location near's number rows) from a one-time job (fhir_jobs), run by the
-- server after it starts.
CREATE TABLE fhir_idx_composite (
  project_id TEXT NOT NULL, resource_type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
  seq INTEGER NOT NULL, -- the combination's number among the resource's rows of param
  s1 TEXT NOT NULL DEFAULT '', c1 TEXT NOT NULL DEFAULT '', t1 TEXT NOT NULL DEFAULT '', x1 TEXT NOT NULL DEFAULT '',
  n1 REAL NOT NULL DEFAULT 0, lo1 INTEGER NOT NULL DEFAULT 0, hi1 INTEGER NOT NULL DEFAULT 0,
  s2 TEXT NOT NULL DEFAULT '', c2 TEXT NOT NULL DEFAULT '', t2 TEXT NOT NULL DEFAULT '', x2 TEXT NOT NULL DEFAULT '',
  n2 REAL NOT NULL DEFAULT 0, lo2 INTEGER NOT NULL DEFAULT 0, hi2 INTEGER NOT NULL DEFAULT 0,
  s3 TEXT NOT NULL DEFAULT '', c3 TEXT NOT NULL DEFAULT '', t3 TEXT NOT NULL DEFAULT '', x3 TEXT NOT NULL DEFAULT '',
  n3 REAL NOT NULL DEFAULT 0, lo3 INTEGER NOT NULL DEFAULT 0, hi3 INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (project_id, resource_type, id, param, seq)
) WITHOUT ROWID;
CREATE INDEX fhir_idx_composite_first ON fhir_idx_composite(project_id, resource_type, param, c1, s1, id);

CREATE TABLE fhir_jobs (
  name TEXT PRIMARY KEY,
  done_at BIGINT
);
-- Done at once when there is nothing to index (done_at 0).
INSERT INTO fhir_jobs (name, done_at) SELECT 'search-index-0019', CASE WHEN EXISTS (SELECT 1 FROM fhir_resources) THEN NULL ELSE 0 END;
