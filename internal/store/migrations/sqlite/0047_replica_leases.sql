-- Replicas that apply changes as they are announced (issue 28). A replica
-- holding an unexpired lease here skips the per-request read of the
-- change version; in exchange, whoever commits a change waits (after its
-- commit, before answering) until every such replica has applied it
-- (applied >= the change's version) or its lease has run out. Unused on
-- SQLite, where one process serves the database.
CREATE TABLE replica_leases (
    id TEXT PRIMARY KEY,
    applied BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    -- the backend of the replica's listening connection (for operators:
    -- pg_stat_activity.pid)
    pid INTEGER NOT NULL DEFAULT 0
);
