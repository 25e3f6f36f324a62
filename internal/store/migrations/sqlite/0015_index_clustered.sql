-- Index rows clustered by resource (WITHOUT ROWID, keyed by every column):
-- a row is stored once, in the b-tree that deleting a resource's rows and
-- the per-resource probes already used (project, type, id, param), instead
-- of in a rowid table plus that index. A write then inserts each row into
-- two b-trees, not three; ids are time-ordered (UUIDv7), so the clustered
-- insert lands at the end of the tree.
CREATE TABLE fhir_idx_token_new (
  project_id TEXT NOT NULL, resource_type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
  system TEXT NOT NULL, code TEXT NOT NULL, display TEXT NOT NULL,
  PRIMARY KEY (project_id, resource_type, id, param, code, system, display)
) WITHOUT ROWID;
INSERT OR IGNORE INTO fhir_idx_token_new SELECT project_id, resource_type, id, param, system, code, display FROM fhir_idx_token;
DROP TABLE fhir_idx_token;
ALTER TABLE fhir_idx_token_new RENAME TO fhir_idx_token;
CREATE INDEX fhir_idx_token_code ON fhir_idx_token(project_id, resource_type, param, code, system, id);

CREATE TABLE fhir_idx_string_new (
  project_id TEXT NOT NULL, resource_type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
  value TEXT NOT NULL, exact TEXT NOT NULL,
  PRIMARY KEY (project_id, resource_type, id, param, value, exact)
) WITHOUT ROWID;
INSERT OR IGNORE INTO fhir_idx_string_new SELECT project_id, resource_type, id, param, value, exact FROM fhir_idx_string;
DROP TABLE fhir_idx_string;
ALTER TABLE fhir_idx_string_new RENAME TO fhir_idx_string;
CREATE INDEX fhir_idx_string_value ON fhir_idx_string(project_id, resource_type, param, value, id);

CREATE TABLE fhir_idx_reference_new (
  project_id TEXT NOT NULL, resource_type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
  ref_type TEXT NOT NULL, ref_id TEXT NOT NULL, url TEXT NOT NULL,
  PRIMARY KEY (project_id, resource_type, id, param, ref_id, ref_type, url)
) WITHOUT ROWID;
INSERT OR IGNORE INTO fhir_idx_reference_new SELECT project_id, resource_type, id, param, ref_type, ref_id, url FROM fhir_idx_reference;
DROP TABLE fhir_idx_reference;
ALTER TABLE fhir_idx_reference_new RENAME TO fhir_idx_reference;
CREATE INDEX fhir_idx_reference_target ON fhir_idx_reference(project_id, resource_type, param, ref_id, ref_type, id);

CREATE TABLE fhir_idx_date_new (
  project_id TEXT NOT NULL, resource_type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
  low INTEGER NOT NULL, high INTEGER NOT NULL,
  PRIMARY KEY (project_id, resource_type, id, param, low, high)
) WITHOUT ROWID;
INSERT OR IGNORE INTO fhir_idx_date_new SELECT project_id, resource_type, id, param, low, high FROM fhir_idx_date;
DROP TABLE fhir_idx_date;
ALTER TABLE fhir_idx_date_new RENAME TO fhir_idx_date;
CREATE INDEX fhir_idx_date_low ON fhir_idx_date(project_id, resource_type, param, low, high, id);

CREATE TABLE fhir_idx_number_new (
  project_id TEXT NOT NULL, resource_type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
  value DOUBLE PRECISION NOT NULL, system TEXT NOT NULL, code TEXT NOT NULL,
  PRIMARY KEY (project_id, resource_type, id, param, value, system, code)
) WITHOUT ROWID;
INSERT OR IGNORE INTO fhir_idx_number_new SELECT project_id, resource_type, id, param, value, system, code FROM fhir_idx_number;
DROP TABLE fhir_idx_number;
ALTER TABLE fhir_idx_number_new RENAME TO fhir_idx_number;
CREATE INDEX fhir_idx_number_value ON fhir_idx_number(project_id, resource_type, param, value, id);

CREATE TABLE fhir_idx_uri_new (
  project_id TEXT NOT NULL, resource_type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
  uri TEXT NOT NULL,
  PRIMARY KEY (project_id, resource_type, id, param, uri)
) WITHOUT ROWID;
INSERT OR IGNORE INTO fhir_idx_uri_new SELECT project_id, resource_type, id, param, uri FROM fhir_idx_uri;
DROP TABLE fhir_idx_uri;
ALTER TABLE fhir_idx_uri_new RENAME TO fhir_idx_uri;
CREATE INDEX fhir_idx_uri_value ON fhir_idx_uri(project_id, resource_type, param, uri, id);
