-- Token :of-type (identifier:of-type=system|code|value): each Identifier's
-- type codings are indexed as token rows of "<param>:of-type" with code
-- "system|code|value". Resources written before get them from a one-time
-- job (fhir_jobs), run by the server after it starts.
INSERT INTO fhir_jobs (name, done_at) SELECT 'search-index-0020', CASE WHEN EXISTS (SELECT 1 FROM fhir_resources) THEN NULL ELSE 0 END;
