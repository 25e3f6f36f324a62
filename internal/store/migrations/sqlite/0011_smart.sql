-- SMART on FHIR: the project's token authorizer function, inline JWKS of
-- backend-service clients, client assertion ids seen (replay), one-time
-- authorization codes and refresh tokens (rotated; a family is revoked
-- when a used token comes back).
ALTER TABLE projects ADD COLUMN authorizer_zambda_id TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN authorizer_issuers TEXT NOT NULL DEFAULT '';
ALTER TABLE m2m_clients ADD COLUMN jwks TEXT NOT NULL DEFAULT '';

CREATE TABLE assertion_jtis (
  issuer TEXT NOT NULL,
  jti TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (issuer, jti)
);

CREATE TABLE oauth_codes (
  code_hash TEXT PRIMARY KEY,
  project_id TEXT NOT NULL,
  grant_data TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);

CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  project_id TEXT NOT NULL,
  family TEXT NOT NULL,
  client_id TEXT NOT NULL,
  grant_data TEXT NOT NULL,
  used_at BIGINT,
  revoked_at BIGINT,
  expires_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
