-- Remembered sign-in (issue 26): sessions of Ward's own sign-in pages (a
-- cookie holds the token, the row its hash), consent remembered per user
-- and application until withdrawn, and the user each refresh token was
-- issued to (withdrawing an application's consent revokes them).
CREATE TABLE oauth_sessions (
  token_hash TEXT PRIMARY KEY,
  project_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);

CREATE TABLE oauth_consents (
  project_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  scopes TEXT NOT NULL,
  granted_at BIGINT NOT NULL,
  withdrawn_at BIGINT,
  PRIMARY KEY (project_id, user_id, client_id)
);

ALTER TABLE refresh_tokens ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
CREATE INDEX refresh_tokens_user ON refresh_tokens (project_id, user_id, client_id);
