-- The sweep of orphaned blobs asks, for each blob of a project, whether an
-- object still points at it.
CREATE INDEX z3_objects_blob ON z3_objects(project_id, blob_key);
