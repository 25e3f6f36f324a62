-- Functional dependencies between the index tables' key columns: a param
-- name fixes its resource type, a code its system, a ref_id its ref_type.
-- Without them PostgreSQL multiplies the columns' selectivities as if
-- independent, estimates one row for Observation?subject=&code=, and the
-- generic plan of that prepared statement (chosen after five executions)
-- scanned every row of the common code for each candidate instead of
-- probing by id: 284 instead of 8,300 searches/s (bench/RESULTS.md).
CREATE STATISTICS fhir_resources_dep (dependencies) ON project_id, resource_type, deleted FROM fhir_resources;
CREATE STATISTICS fhir_idx_token_dep (dependencies) ON project_id, resource_type, param, system, code FROM fhir_idx_token;
CREATE STATISTICS fhir_idx_string_dep (dependencies) ON project_id, resource_type, param FROM fhir_idx_string;
CREATE STATISTICS fhir_idx_reference_dep (dependencies) ON project_id, resource_type, param, ref_type, ref_id FROM fhir_idx_reference;
CREATE STATISTICS fhir_idx_date_dep (dependencies) ON project_id, resource_type, param FROM fhir_idx_date;
CREATE STATISTICS fhir_idx_number_dep (dependencies) ON project_id, resource_type, param, system, code FROM fhir_idx_number;
CREATE STATISTICS fhir_idx_uri_dep (dependencies) ON project_id, resource_type, param FROM fhir_idx_uri;
ANALYZE fhir_resources, fhir_idx_token, fhir_idx_string, fhir_idx_reference, fhir_idx_date, fhir_idx_number, fhir_idx_uri;

-- String prefixes (name=smi) as a range in byte order, as on SQLite: a
-- LIKE with a bound pattern cannot use an index (and with a linguistic
-- collation no LIKE can), so every Patient name row was read per search.
-- COLLATE "C" makes the range exact whatever the database's collation.
DROP INDEX fhir_idx_string_value;
CREATE INDEX fhir_idx_string_value ON fhir_idx_string(project_id, resource_type, param, value COLLATE "C", id);
