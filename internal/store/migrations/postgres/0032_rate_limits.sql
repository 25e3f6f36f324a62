-- Per-principal API rate limits (issue 28 item 3). A project's limit in
-- requests per minute per principal: 0 takes the server's default
-- (--rate-limit), -1 is no limit.
ALTER TABLE projects ADD COLUMN rate_limit INTEGER NOT NULL DEFAULT 0;

-- Requests counted per principal key and fixed window (window_start in
-- ms), shared by replicas: each adds its local counts in batches, never a
-- write per request. Rows of past windows are pruned.
CREATE TABLE rate_counts (
  key TEXT NOT NULL,
  window_start BIGINT NOT NULL,
  count BIGINT NOT NULL,
  PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_counts_window ON rate_counts(window_start);
