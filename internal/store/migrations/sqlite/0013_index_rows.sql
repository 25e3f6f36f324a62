-- The index stores each value once per resource (search.IndexValues):
-- _id and _lastUpdated are answered from fhir_resources' own columns, and
-- _revinclude reads references by source type and parameter, so the
-- reverse index and those rows only cost writes.
DROP INDEX fhir_idx_reference_rev;
DELETE FROM fhir_idx_token WHERE param = '_id';
DELETE FROM fhir_idx_date WHERE param = '_lastUpdated';
