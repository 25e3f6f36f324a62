-- FHIR resources: the current version, every version, search index rows
-- (one table per parameter type) and the outbox, all written in one
-- transaction per change.
CREATE TABLE fhir_resources (
  project_id TEXT NOT NULL,
  resource_type TEXT NOT NULL,
  id TEXT NOT NULL,
  version_id INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  content TEXT NOT NULL,
  PRIMARY KEY (project_id, resource_type, id)
);
CREATE INDEX fhir_resources_updated ON fhir_resources(project_id, resource_type, last_updated);

CREATE TABLE fhir_history (
  project_id TEXT NOT NULL,
  resource_type TEXT NOT NULL,
  id TEXT NOT NULL,
  version_id INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  method TEXT NOT NULL,
  content TEXT NOT NULL,
  PRIMARY KEY (project_id, resource_type, id, version_id)
);
CREATE INDEX fhir_history_type ON fhir_history(project_id, resource_type, last_updated);
CREATE INDEX fhir_history_all ON fhir_history(project_id, last_updated);

CREATE TABLE fhir_idx_token (
  project_id TEXT NOT NULL, resource_type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
  system TEXT NOT NULL, code TEXT NOT NULL, display TEXT NOT NULL
);
CREATE INDEX fhir_idx_token_code ON fhir_idx_token(project_id, resource_type, param, code, system);
CREATE INDEX fhir_idx_token_res ON fhir_idx_token(project_id, resource_type, id);

CREATE TABLE fhir_idx_string (
  project_id TEXT NOT NULL, resource_type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
  value TEXT NOT NULL, exact TEXT NOT NULL
);
CREATE INDEX fhir_idx_string_value ON fhir_idx_string(project_id, resource_type, param, value);
CREATE INDEX fhir_idx_string_res ON fhir_idx_string(project_id, resource_type, id);

CREATE TABLE fhir_idx_reference (
  project_id TEXT NOT NULL, resource_type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
  ref_type TEXT NOT NULL, ref_id TEXT NOT NULL, url TEXT NOT NULL
);
CREATE INDEX fhir_idx_reference_target ON fhir_idx_reference(project_id, resource_type, param, ref_id, ref_type);
CREATE INDEX fhir_idx_reference_rev ON fhir_idx_reference(project_id, ref_type, ref_id);
CREATE INDEX fhir_idx_reference_res ON fhir_idx_reference(project_id, resource_type, id);

CREATE TABLE fhir_idx_date (
  project_id TEXT NOT NULL, resource_type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
  low INTEGER NOT NULL, high INTEGER NOT NULL
);
CREATE INDEX fhir_idx_date_low ON fhir_idx_date(project_id, resource_type, param, low);
CREATE INDEX fhir_idx_date_res ON fhir_idx_date(project_id, resource_type, id);

CREATE TABLE fhir_idx_number (
  project_id TEXT NOT NULL, resource_type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
  value DOUBLE PRECISION NOT NULL, system TEXT NOT NULL, code TEXT NOT NULL
);
CREATE INDEX fhir_idx_number_value ON fhir_idx_number(project_id, resource_type, param, value);
CREATE INDEX fhir_idx_number_res ON fhir_idx_number(project_id, resource_type, id);

CREATE TABLE fhir_idx_uri (
  project_id TEXT NOT NULL, resource_type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
  uri TEXT NOT NULL
);
CREATE INDEX fhir_idx_uri_value ON fhir_idx_uri(project_id, resource_type, param, uri);
CREATE INDEX fhir_idx_uri_res ON fhir_idx_uri(project_id, resource_type, id);

CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id TEXT NOT NULL,
  resource_type TEXT NOT NULL,
  id TEXT NOT NULL,
  version_id INTEGER NOT NULL,
  interaction TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
