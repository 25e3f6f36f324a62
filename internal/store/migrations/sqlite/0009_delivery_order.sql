-- The dispatcher's "is an older version of this resource still pending for
-- this subscription?" test, as one index seek per candidate.
CREATE INDEX sub_deliveries_resource ON sub_deliveries(subscription_id, resource_type, resource_id, status, version_id);
