-- Search indexes that end in the resource id: a clause's ids come from the
-- index alone (covering), and the other clauses of a search are checked
-- per candidate with an exact seek on (project, type, param, value, id)
-- instead of building a set of every resource with a common code.
DROP INDEX fhir_idx_token_code;
CREATE INDEX fhir_idx_token_code ON fhir_idx_token(project_id, resource_type, param, code, system, id);
DROP INDEX fhir_idx_string_value;
CREATE INDEX fhir_idx_string_value ON fhir_idx_string(project_id, resource_type, param, value, id);
DROP INDEX fhir_idx_reference_target;
CREATE INDEX fhir_idx_reference_target ON fhir_idx_reference(project_id, resource_type, param, ref_id, ref_type, id);
DROP INDEX fhir_idx_date_low;
CREATE INDEX fhir_idx_date_low ON fhir_idx_date(project_id, resource_type, param, low, high, id);
DROP INDEX fhir_idx_number_value;
CREATE INDEX fhir_idx_number_value ON fhir_idx_number(project_id, resource_type, param, value, id);
DROP INDEX fhir_idx_uri_value;
CREATE INDEX fhir_idx_uri_value ON fhir_idx_uri(project_id, resource_type, param, uri, id);

-- Per-resource probes (correlated tests of range and prefix clauses).
DROP INDEX fhir_idx_token_res;
CREATE INDEX fhir_idx_token_res ON fhir_idx_token(project_id, resource_type, id, param);
DROP INDEX fhir_idx_string_res;
CREATE INDEX fhir_idx_string_res ON fhir_idx_string(project_id, resource_type, id, param);
DROP INDEX fhir_idx_reference_res;
CREATE INDEX fhir_idx_reference_res ON fhir_idx_reference(project_id, resource_type, id, param);
DROP INDEX fhir_idx_date_res;
CREATE INDEX fhir_idx_date_res ON fhir_idx_date(project_id, resource_type, id, param);
DROP INDEX fhir_idx_number_res;
CREATE INDEX fhir_idx_number_res ON fhir_idx_number(project_id, resource_type, id, param);
DROP INDEX fhir_idx_uri_res;
CREATE INDEX fhir_idx_uri_res ON fhir_idx_uri(project_id, resource_type, id, param);
