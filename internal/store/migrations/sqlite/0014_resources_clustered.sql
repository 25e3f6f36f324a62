-- The current versions clustered by their key (WITHOUT ROWID): a read by id
-- descends one b-tree instead of the key index and then the row's table, and
-- a create inserts into one b-tree fewer.
CREATE TABLE fhir_resources_new (
  project_id TEXT NOT NULL,
  resource_type TEXT NOT NULL,
  id TEXT NOT NULL,
  version_id INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  content TEXT NOT NULL,
  PRIMARY KEY (project_id, resource_type, id)
) WITHOUT ROWID;
INSERT INTO fhir_resources_new (project_id, resource_type, id, version_id, last_updated, deleted, content)
  SELECT project_id, resource_type, id, version_id, last_updated, deleted, content FROM fhir_resources;
DROP TABLE fhir_resources;
ALTER TABLE fhir_resources_new RENAME TO fhir_resources;
CREATE INDEX fhir_resources_updated ON fhir_resources(project_id, resource_type, last_updated);
