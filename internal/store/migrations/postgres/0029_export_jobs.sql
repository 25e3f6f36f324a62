-- FHIR Bulk Data $export jobs (package fhir/bulk). A job is claimed by
-- one replica at a time with a lease (lease_until, lease_owner) and
-- checkpoints after every output file: the file's row and the job's new
-- cursor commit together, so a job resumed elsewhere starts after the last
-- recorded file and never writes a line twice.
CREATE TABLE export_jobs (
  project_id TEXT NOT NULL,
  id TEXT NOT NULL,
  principal TEXT NOT NULL,      -- JSON: who asked (the job reads as them)
  request TEXT NOT NULL,        -- the kick-off URL, for the manifest
  params TEXT NOT NULL,         -- JSON: level, group, types, since, filters
  status TEXT NOT NULL,         -- running, done, failed
  transaction_time BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  lease_until BIGINT NOT NULL DEFAULT 0,
  lease_owner TEXT NOT NULL DEFAULT '',
  cursor TEXT NOT NULL DEFAULT '',  -- JSON checkpoint: type, last id, files
  written BIGINT NOT NULL DEFAULT 0,    -- resources written so far
  error_status BIGINT NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (project_id, id)
);
CREATE INDEX export_jobs_claim ON export_jobs(lease_until) WHERE status = 'running';
CREATE TABLE export_files (
  project_id TEXT NOT NULL,
  job_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  resource_type TEXT NOT NULL,
  object_path TEXT NOT NULL,
  count BIGINT NOT NULL,
  PRIMARY KEY (project_id, job_id, seq)
);
