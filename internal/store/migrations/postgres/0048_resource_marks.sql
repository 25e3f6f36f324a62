-- The current-version resource cache of each replica (issue 28). A write
-- that updates or deletes a resource announces it (NOTIFY) in its
-- transaction; after its commit it takes a mark from resource_marks and
-- announces that too, then waits until every other leased replica has
-- heard a mark at least as high (replica_leases.mark) or its lease ran out.
-- NOTIFY delivers in commit order, so such a replica has dropped the
-- resource from its cache by then.
ALTER TABLE replica_leases ADD COLUMN mark BIGINT NOT NULL DEFAULT 0;
CREATE SEQUENCE resource_marks;
