-- The dispatcher claims due deliveries oldest first (next_attempt_at, id)
-- a few at a time. A matcher batch gives thousands of deliveries one
-- next_attempt_at, and with an index on (status, next_attempt_at) alone
-- PostgreSQL sorted all of them (testing each for an older pending
-- version) on every claim: 85 ms for 7,000 pending. Walking this index in
-- claim order stops after the first few (7 ms). Pending rows only: the
-- delivered ones, most of the table, never need it. "next_attempt_at > 0"
-- (always true) is in the predicate so that only a query saying so, the
-- claim, can use it: the claim's test for an older pending version of the
-- same resource (status = 'pending' alone) used it too, reading every
-- pending row per candidate (536 ms a claim) instead of probing
-- sub_deliveries_resource. SQLite's index already ends with the row id,
-- so it walks in claim order as it is.
CREATE INDEX sub_deliveries_claim ON sub_deliveries(next_attempt_at, id) WHERE status = 'pending' AND next_attempt_at > 0;
DROP INDEX sub_deliveries_due;
