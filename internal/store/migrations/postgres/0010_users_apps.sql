-- Applications (the OAuth clients users log in through) and project users.
-- An application is a public client until its secret is rotated
-- (secret_hash '' = no secret). URL lists are JSON arrays of strings.
CREATE TABLE applications (
  project_id TEXT NOT NULL REFERENCES projects(id),
  id TEXT NOT NULL,
  client_id TEXT NOT NULL UNIQUE,
  secret_hash TEXT NOT NULL DEFAULT '',
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  login_redirect_uri TEXT NOT NULL DEFAULT '',
  logo_uri TEXT NOT NULL DEFAULT '',
  allowed_callback_urls TEXT NOT NULL DEFAULT '[]',
  allowed_logout_urls TEXT NOT NULL DEFAULT '[]',
  allowed_web_origins TEXT NOT NULL DEFAULT '[]',
  allowed_cors_origins TEXT NOT NULL DEFAULT '[]',
  refresh_token_enabled BOOLEAN NOT NULL DEFAULT FALSE,
  mfa_enabled BOOLEAN NOT NULL DEFAULT FALSE,
  passwordless_sms BOOLEAN NOT NULL DEFAULT FALSE,
  login_with_email_enabled BOOLEAN NOT NULL DEFAULT TRUE,
  should_send_invite_email BOOLEAN NOT NULL DEFAULT FALSE,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (project_id, id)
);

-- A user belongs to one project. email is stored lower-cased, so the
-- unique index makes it unique per project regardless of case; NULL (an
-- SMS-only user) never collides.
CREATE TABLE users (
  project_id TEXT NOT NULL REFERENCES projects(id),
  id TEXT NOT NULL,
  email TEXT,
  phone_number TEXT,
  name TEXT NOT NULL DEFAULT '',
  authentication_method TEXT NOT NULL,
  profile TEXT NOT NULL DEFAULT '',
  access_policy TEXT,
  password_hash TEXT NOT NULL DEFAULT '',
  application_id TEXT NOT NULL DEFAULT '',
  invitation_hash TEXT,
  invitation_expires_at BIGINT,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (project_id, id)
);
CREATE UNIQUE INDEX users_email ON users(project_id, email);
CREATE UNIQUE INDEX users_phone ON users(project_id, phone_number);
CREATE INDEX users_invitation ON users(invitation_hash);
