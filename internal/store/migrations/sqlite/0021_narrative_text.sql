-- _text searches the narrative: its text, without markup and normalised,
-- is indexed as string rows of "_text" (overlapping chunks). Resources
-- written before get them from a one-time job (fhir_jobs), run by the
-- server after it starts.
INSERT INTO fhir_jobs (name, done_at) SELECT 'search-index-0021', CASE WHEN EXISTS (SELECT 1 FROM fhir_resources) THEN NULL ELSE 0 END;
