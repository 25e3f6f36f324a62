-- Console sessions in the database (issue 30): a restart keeps developers
-- signed in and every replica accepts every session. The cookie holds a
-- random token, the row its hash; the developer's access token is sealed
-- with the master key (its label names the row), never stored in clear.
CREATE TABLE console_sessions (
  token_hash TEXT PRIMARY KEY,
  developer_id TEXT NOT NULL,
  project_id TEXT NOT NULL,
  project_name TEXT NOT NULL,
  access_token BLOB NOT NULL,
  csrf TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- The console's dashboard: a project's delivery attempts of the last hour
-- (a range of attempt times, then each delivery by its key) and its
-- pending deliveries (the backlog).
CREATE INDEX sub_attempts_at ON sub_attempts (at);
CREATE INDEX sub_deliveries_project_status ON sub_deliveries (project_id, status);
