-- Binary.securityContext is indexed as Ward's search parameter
-- "securitycontext" (reference rows), so that a search leaves out, inside
-- the SQL, the Binaries whose context the caller may not read: totals and
-- pages stay exact. Binaries written before get their rows from a one-time
-- job (fhir_jobs), run by the server after it starts.
INSERT INTO fhir_jobs (name, done_at) SELECT 'search-index-0045', CASE WHEN EXISTS (SELECT 1 FROM fhir_resources WHERE resource_type = 'Binary') THEN NULL ELSE 0 END;
