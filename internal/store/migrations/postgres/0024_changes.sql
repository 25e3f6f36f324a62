-- The change feed replicas keep their caches by (package replica): one
-- counter, bumped in the transaction of every change a cache depends on
-- (its row lock orders the bumps as the commits), and a log of what
-- changed at each version. A replica compares the counter with the
-- version its caches hold and applies the log rows in between.
CREATE TABLE change_version (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version BIGINT NOT NULL
);
INSERT INTO change_version (id, version) VALUES (1, 0);
CREATE TABLE changes (
  version BIGINT PRIMARY KEY,
  kind TEXT NOT NULL,
  project_id TEXT NOT NULL DEFAULT '',
  subject TEXT NOT NULL DEFAULT '',
  expires_at BIGINT NOT NULL DEFAULT 0
);
-- A signing key signs from activates_at on (NULL: from created_at), so a
-- rotated-in key is published for a JWKS cache lifetime before any
-- replica signs with it.
ALTER TABLE signing_keys ADD COLUMN activates_at BIGINT;
