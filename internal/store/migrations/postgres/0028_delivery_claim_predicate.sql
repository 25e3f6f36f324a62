-- sub_deliveries_claim (0025) only for queries that name it: with the
-- predicate status = 'pending' alone, the claim's test for an older
-- pending version of the same resource (status = 'pending' and the
-- resource) could use it too, and under stale statistics did: it read
-- every pending row per candidate (536 ms a claim with 19,000 pending)
-- instead of probing sub_deliveries_resource. "next_attempt_at > 0" is
-- always true, and only the claim and its idle probe say it.
DROP INDEX sub_deliveries_claim;
CREATE INDEX sub_deliveries_claim ON sub_deliveries(next_attempt_at, id) WHERE status = 'pending' AND next_attempt_at > 0;
