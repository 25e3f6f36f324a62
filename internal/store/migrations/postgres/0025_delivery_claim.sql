-- The dispatcher claims due deliveries oldest first (next_attempt_at, id)
-- a few at a time. A matcher batch gives thousands of deliveries one
-- next_attempt_at, and with an index on (status, next_attempt_at) alone
-- PostgreSQL sorted all of them (testing each for an older pending
-- version) on every claim: 85 ms for 7,000 pending. Walking this index in
-- claim order stops after the first few (7 ms). Pending rows only: the
-- delivered ones, most of the table, never need it. SQLite's index already
-- ends with the row id, so it walks in this order as it is.
CREATE INDEX sub_deliveries_claim ON sub_deliveries(next_attempt_at, id) WHERE status = 'pending';
DROP INDEX sub_deliveries_due;
