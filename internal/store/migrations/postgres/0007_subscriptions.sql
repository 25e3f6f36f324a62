-- FHIR Subscriptions: who owns each (their read access is checked again at
-- delivery), and one delivery row per
-- (subscription, event) with its attempts. Deliveries stay after failure
-- so they can be replayed.
CREATE TABLE sub_owners (
  project_id TEXT NOT NULL,
  subscription_id TEXT NOT NULL,
  principal_kind TEXT NOT NULL,
  principal_id TEXT NOT NULL,
  client_id TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (project_id, subscription_id)
);


CREATE TABLE sub_deliveries (
  id BIGSERIAL PRIMARY KEY,
  project_id TEXT NOT NULL,
  subscription_id TEXT NOT NULL,
  event_seq BIGINT NOT NULL,
  resource_type TEXT NOT NULL,
  resource_id TEXT NOT NULL,
  version_id BIGINT NOT NULL,
  interaction TEXT NOT NULL,
  status TEXT NOT NULL,            -- pending, delivered, failed, skipped
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL,
  lease_until BIGINT NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  delivered_at BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX sub_deliveries_event ON sub_deliveries(subscription_id, event_seq);
CREATE INDEX sub_deliveries_due ON sub_deliveries(status, next_attempt_at);
CREATE INDEX sub_deliveries_sub ON sub_deliveries(project_id, subscription_id, id);

CREATE TABLE sub_attempts (
  delivery_id BIGINT NOT NULL,
  attempt INTEGER NOT NULL,
  at BIGINT NOT NULL,
  status_code INTEGER NOT NULL,
  error TEXT NOT NULL DEFAULT '',
  duration_ms INTEGER NOT NULL,
  PRIMARY KEY (delivery_id, attempt)
);

-- The matcher marks each outbox row once it has turned it into deliveries
-- (in the same transaction). A flag rather than a high-water mark: on
-- PostgreSQL, sequence numbers can commit out of order, and a mark would
-- skip a row that committed late.
ALTER TABLE outbox ADD COLUMN matched INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_unmatched ON outbox(seq) WHERE matched = 0;
