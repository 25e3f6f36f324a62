-- IAM: projects, roles, principals (M2M clients, developers), role holders,
-- signing keys, token revocations and the audit trail.
-- Times are unix milliseconds so both dialects store them the same way.
CREATE TABLE projects (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  signup_enabled BOOLEAN NOT NULL DEFAULT FALSE,
  sandbox BOOLEAN NOT NULL DEFAULT FALSE,
  default_patient_role_id TEXT,
  default_sso_user_role_id TEXT,
  created_at BIGINT NOT NULL
);

CREATE TABLE roles (
  project_id TEXT NOT NULL REFERENCES projects(id),
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  access_policy TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (project_id, id)
);
CREATE UNIQUE INDEX roles_name ON roles(project_id, name);

CREATE TABLE m2m_clients (
  project_id TEXT NOT NULL REFERENCES projects(id),
  id TEXT NOT NULL,
  client_id TEXT NOT NULL UNIQUE,
  secret_hash TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  access_policy TEXT,
  jwks_url TEXT NOT NULL DEFAULT '',
  execution_role_id TEXT,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (project_id, id)
);
CREATE UNIQUE INDEX m2m_execution_role ON m2m_clients(project_id, execution_role_id);

CREATE TABLE developers (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL
);

CREATE TABLE project_developers (
  project_id TEXT NOT NULL REFERENCES projects(id),
  developer_id TEXT NOT NULL REFERENCES developers(id),
  practitioner_id TEXT NOT NULL DEFAULT '',
  access_policy TEXT,
  invitation_hash TEXT,
  invitation_expires_at BIGINT,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (project_id, developer_id)
);

CREATE TABLE role_holders (
  project_id TEXT NOT NULL,
  role_id TEXT NOT NULL,
  holder_kind TEXT NOT NULL,
  holder_id TEXT NOT NULL,
  PRIMARY KEY (project_id, holder_kind, holder_id, role_id)
);
CREATE INDEX role_holders_role ON role_holders(project_id, role_id);

CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY,
  alg TEXT NOT NULL,
  private_pem TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  retired_at BIGINT
);

CREATE TABLE revoked_tokens (
  jti TEXT PRIMARY KEY,
  expires_at BIGINT NOT NULL,
  revoked_at BIGINT NOT NULL
);

CREATE TABLE audit_events (
  id BIGSERIAL PRIMARY KEY,
  project_id TEXT NOT NULL,
  at BIGINT NOT NULL,
  request_id TEXT NOT NULL,
  principal_kind TEXT NOT NULL,
  principal_id TEXT NOT NULL,
  action TEXT NOT NULL,
  resource TEXT NOT NULL,
  outcome TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_project ON audit_events(project_id, at);
