-- A narrow index of the resources' keys. The table is clustered by the same
-- key (WITHOUT ROWID) with each row's content inline, so a search's COUNT,
-- which only asks whether a matching id is a current resource, walked pages
-- full of content: ~3.5 µs a match at 180k resources, half the CPU of a
-- name search with 127 matches. The count now reads this index alone.
CREATE INDEX fhir_resources_ids ON fhir_resources(project_id, resource_type, id);
