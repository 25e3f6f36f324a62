-- PostgreSQL's replicas cache resources (issue 28); SQLite's one process
-- reads them in-process and caches nothing. The column keeps the schemas
-- alike.
ALTER TABLE replica_leases ADD COLUMN mark BIGINT NOT NULL DEFAULT 0;
