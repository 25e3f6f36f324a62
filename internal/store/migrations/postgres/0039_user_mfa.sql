-- Users' TOTP enrolment (the secret sealed with the master key; confirmed
-- once a code from the app checked; last_step is the time step of the
-- last code accepted, so a code works once) and password reset links (the
-- token's hash only; one link per user: a new one replaces the old).
CREATE TABLE user_mfa (
  project_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  secret_sealed BYTEA NOT NULL,
  confirmed_at BIGINT,
  last_step BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (project_id, user_id)
);

CREATE TABLE user_password_resets (
  token_hash TEXT PRIMARY KEY,
  project_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  redirect_url TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX user_password_resets_user ON user_password_resets (project_id, user_id);
