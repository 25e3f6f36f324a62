-- Invoice-based charges and refunds (issue 32 leftovers). invoice_id is
-- the Invoice a charge paid ('' when it totalled ChargeItems): a
-- succeeded charge marks it balanced, the webhook's too.
ALTER TABLE payment_charges ADD COLUMN invoice_id TEXT NOT NULL DEFAULT '';
-- An Invoice is paid by at most one live charge, whichever Encounter asks.
CREATE UNIQUE INDEX payment_charges_one_per_invoice ON payment_charges(project_id, invoice_id) WHERE invoice_id <> '' AND status <> 'failed';

-- One row per refund of a charge, keyed by the idempotency key Ward
-- derives from the request (charge, amount or "the rest", the caller's
-- Idempotency-Key): the INSERT that claims it runs in the transaction
-- that sums the charge's other refunds, so refunds never add up to more
-- than was charged, replicas included. status as for charges.
CREATE TABLE payment_refunds (
  project_id TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  charge_key TEXT NOT NULL,
  encounter_id TEXT NOT NULL,
  provider TEXT NOT NULL,
  status TEXT NOT NULL,
  amount INTEGER NOT NULL,
  currency TEXT NOT NULL,
  refund_id TEXT NOT NULL DEFAULT '',
  reconciliation_id TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (project_id, idem_key)
);
CREATE INDEX payment_refunds_charge ON payment_refunds(project_id, charge_key);
CREATE INDEX payment_refunds_refund ON payment_refunds(project_id, refund_id);
