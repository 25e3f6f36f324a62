-- Labs over HL7 v2 (package lab). A route is a project's connection to a
-- lab: where orders go (an MLLP host:port, checked by the egress policy
-- when dialled) and the hash of the secret the lab's results carry in
-- MSH-8, which is how a result names its project (route_guid is unique
-- across projects; the secret itself is shown once, at creation).
CREATE TABLE lab_routes (
  project_id TEXT NOT NULL,
  route_guid TEXT NOT NULL,
  lab_guid TEXT NOT NULL,
  account_number TEXT NOT NULL,
  mllp_address TEXT NOT NULL,
  secret_hash TEXT NOT NULL,    -- hex SHA-256 of the result secret
  details TEXT NOT NULL,        -- JSON: the SDK's other route fields
  created_at BIGINT NOT NULL,
  PRIMARY KEY (project_id, route_guid)
);
CREATE UNIQUE INDEX lab_routes_guid ON lab_routes(route_guid);
-- Orders sent (ORM^O01), by message control id: a submit retried after
-- the lab accepted is answered from here and never sent twice.
CREATE TABLE lab_orders (
  project_id TEXT NOT NULL,
  control_id TEXT NOT NULL,
  route_guid TEXT NOT NULL,
  status TEXT NOT NULL,         -- sending, accepted
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (project_id, control_id)
);
