-- Failed sign-ins, counted in the database so that every replica sees the
-- same counts (issue 28). One row per key ("acct:...", "addr:...",
-- "pair:..."): the failures since window_start (ms). A row whose window has
-- passed is reset by the next failure or pruned.
CREATE TABLE login_failures (
  key TEXT PRIMARY KEY,
  window_start INTEGER NOT NULL,
  count INTEGER NOT NULL
);
CREATE INDEX login_failures_window ON login_failures(window_start);
