-- A counter per project, bumped by every IAM change, so other replicas know
-- to drop their compiled policies.
CREATE TABLE policy_epochs (
  project_id TEXT PRIMARY KEY,
  epoch INTEGER NOT NULL
);
