-- Lab results received (ORU^R01), by route and message control id
-- (MSH-10): written in the transaction that stores a message's
-- resources, so a message sent again is found here and not stored twice,
-- and two copies at once cannot both commit. The resources themselves get
-- time-ordered ids (their index rows append to the b-trees); results
-- stored before this table are found by their first report's id, derived
-- from the route and control id.
CREATE TABLE lab_results (
  project_id TEXT NOT NULL,
  route_guid TEXT NOT NULL,
  control_id TEXT NOT NULL,
  report_id TEXT NOT NULL,      -- the message's first DiagnosticReport
  PRIMARY KEY (project_id, route_guid, control_id)
) WITHOUT ROWID;
