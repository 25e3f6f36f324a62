-- Zambdas (serverless functions), their secrets, logs and cron ticks.
CREATE TABLE zambdas (
  project_id TEXT NOT NULL,
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  runtime TEXT NOT NULL,
  trigger_method TEXT NOT NULL,
  schedule TEXT,                 -- JSON {expression, start, end, retryPolicy}
  memory_size INTEGER NOT NULL,
  timeout_seconds INTEGER NOT NULL,
  execution_role_id TEXT,
  status TEXT NOT NULL,          -- Draft, Validating, Active, Failed
  status_reason TEXT NOT NULL DEFAULT '',
  upload_name TEXT NOT NULL DEFAULT '',  -- file name given to s3-upload, for fileInfo
  code_path TEXT NOT NULL DEFAULT '',    -- Z3 path of the active zip (internal bucket)
  file_name TEXT NOT NULL DEFAULT '',
  file_size INTEGER NOT NULL DEFAULT 0,
  file_modified INTEGER NOT NULL DEFAULT 0,
  file_checksum TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (project_id, id)
);
CREATE UNIQUE INDEX zambdas_name ON zambdas(project_id, name);
CREATE INDEX zambdas_role ON zambdas(project_id, execution_role_id);

-- Secret values are AES-GCM ciphertext under the configured secrets key.
CREATE TABLE zambda_secrets (
  project_id TEXT NOT NULL,
  name TEXT NOT NULL,
  value BLOB NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (project_id, name)
);

-- One row per log line; a stream is a function version's day on one worker
-- class, named as CloudWatch names them.
CREATE TABLE zambda_logs (
  project_id TEXT NOT NULL,
  zambda_id TEXT NOT NULL,
  stream TEXT NOT NULL,
  seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  ingested_at INTEGER NOT NULL,
  message TEXT NOT NULL,
  PRIMARY KEY (project_id, zambda_id, stream, seq)
);
CREATE INDEX zambda_logs_time ON zambda_logs(project_id, zambda_id, at);

-- A cron tick is claimed by inserting it: the primary key lets exactly one
-- replica run each (function, scheduled time).
CREATE TABLE zambda_ticks (
  project_id TEXT NOT NULL,
  zambda_id TEXT NOT NULL,
  tick_at INTEGER NOT NULL,
  claimed_by TEXT NOT NULL,
  claimed_at INTEGER NOT NULL,
  outcome TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (project_id, zambda_id, tick_at)
);
