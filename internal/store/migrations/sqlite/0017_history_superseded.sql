-- fhir_history keeps superseded versions only: the current version, with
-- the interaction that wrote it, is fhir_resources' row. A create then
-- writes its content once, and history reads both tables.
ALTER TABLE fhir_resources ADD COLUMN method TEXT NOT NULL DEFAULT 'PUT';
UPDATE fhir_resources SET method = COALESCE((SELECT h.method FROM fhir_history h
  WHERE h.project_id = fhir_resources.project_id AND h.resource_type = fhir_resources.resource_type
    AND h.id = fhir_resources.id AND h.version_id = fhir_resources.version_id), 'PUT');
DELETE FROM fhir_history WHERE EXISTS (SELECT 1 FROM fhir_resources r
  WHERE r.project_id = fhir_history.project_id AND r.resource_type = fhir_history.resource_type
    AND r.id = fhir_history.id AND r.version_id = fhir_history.version_id);
-- System history (_history?_since=) reads current versions by time too.
CREATE INDEX fhir_resources_all ON fhir_resources(project_id, last_updated);
