-- Fenced leases (issue 28). Every claim of a delivery or a cron tick adds
-- one to its lease_token, and a result is applied only with the token of
-- the claim it came from: a holder that stalled past its lease (a frozen
-- process, a long GC pause) and resumed after another replica reclaimed
-- the work cannot overwrite that replica's result.
ALTER TABLE sub_deliveries ADD COLUMN lease_token BIGINT NOT NULL DEFAULT 0;
-- An attempt's number is the token of the claim that made it, so an
-- attempt whose result was refused is still kept (and marked stale). A
-- pending delivery's token starts past its recorded attempts; a finished
-- one's is raised the same way when it is replayed.
UPDATE sub_deliveries SET lease_token = (SELECT COALESCE(MAX(a.attempt), 0) FROM sub_attempts a WHERE a.delivery_id = sub_deliveries.id)
  WHERE status = 'pending';
ALTER TABLE sub_attempts ADD COLUMN stale INTEGER NOT NULL DEFAULT 0;

-- A claimed tick is leased (renewed while its run goes on); one whose
-- lease ran out without an outcome is claimed again and retried within
-- the function's retry policy, attempts counting every run. lease_until 0
-- is a tick claimed before leases: never reclaimed.
ALTER TABLE zambda_ticks ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE zambda_ticks ADD COLUMN lease_token BIGINT NOT NULL DEFAULT 0;
ALTER TABLE zambda_ticks ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX zambda_ticks_lapsed ON zambda_ticks(lease_until) WHERE outcome = '' AND lease_until > 0;

-- When a function's schedule took effect (creation, or a change of
-- schedule or trigger): no tick before it is ever claimed.
ALTER TABLE zambdas ADD COLUMN armed_at BIGINT NOT NULL DEFAULT 0;
UPDATE zambdas SET armed_at = created_at;
