-- Token :text is a string search on the code's text: the display column of
-- token rows now holds it normalised (lower case, no accents, one space
-- between words). Resources written before get their token rows again from
-- a one-time job (fhir_jobs), run by the server after it starts.
INSERT INTO fhir_jobs (name, done_at) SELECT 'search-index-0023', CASE WHEN EXISTS (SELECT 1 FROM fhir_resources) THEN NULL ELSE 0 END;
