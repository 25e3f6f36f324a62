-- Payments (issue 32). One row per charge attempt, keyed by the
-- idempotency key Ward derives from the request (project, encounter,
-- amount, currency, customer, payment method): the INSERT that claims the
-- key is what lets only one request reach the payment provider. status:
-- pending (claimed, provider not yet answered), succeeded, processing,
-- failed. card is the charged card's JSON (brand, last four, expiry).
CREATE TABLE payment_charges (
  project_id TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  encounter_id TEXT NOT NULL,
  provider TEXT NOT NULL,
  status TEXT NOT NULL,
  amount BIGINT NOT NULL,
  currency TEXT NOT NULL,
  intent_id TEXT NOT NULL DEFAULT '',
  reconciliation_id TEXT NOT NULL DEFAULT '',
  card TEXT NOT NULL DEFAULT '{}',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (project_id, idem_key)
);
CREATE INDEX payment_charges_encounter ON payment_charges(project_id, encounter_id, created_at);
-- An Encounter has at most one charge that has not failed: two requests
-- with different totals cannot both charge it, replicas included.
CREATE UNIQUE INDEX payment_charges_one_live ON payment_charges(project_id, encounter_id) WHERE status <> 'failed';
CREATE INDEX payment_charges_intent ON payment_charges(project_id, intent_id);

-- The local payment provider's cards (development: no payment network).
-- A real provider keeps its customers' methods itself.
CREATE TABLE payment_local_methods (
  project_id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  method_id TEXT NOT NULL,
  brand TEXT NOT NULL,
  last_four TEXT NOT NULL,
  exp_month BIGINT NOT NULL,
  exp_year BIGINT NOT NULL,
  is_default BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (project_id, customer_id, method_id)
);
