-- The principal that started an export job as one indexed key
-- ("kind/id/patient", package fhir/bulk), so GET $export-poll reads a page
-- of that principal's jobs without reading the project's others. Jobs
-- from before are keyed from their principal JSON.
ALTER TABLE export_jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
UPDATE export_jobs SET owner = coalesce(principal::json->>'kind', '') || '/' || coalesce(principal::json->>'id', '') || '/' ||
  coalesce(principal::json->>'patient', '');
CREATE INDEX export_jobs_owner ON export_jobs(project_id, owner, created_at, id);
