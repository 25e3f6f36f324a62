-- A claim rewrites only lease_until and lease_token, which no index holds,
-- so PostgreSQL can update the row in place on its page (a HOT update)
-- instead of adding an entry to each of the table's six indexes, but only
-- if the page has room: rows were inserted into full pages (fillfactor
-- 100), and in a fan-out of 20,000 deliveries 2,698 of 40,400 updates were
-- HOT. The room left on each page takes the claim's new row version; the
-- finishing update (status changes) is not HOT either way. Pages made
-- before this keep their old fill.
ALTER TABLE sub_deliveries SET (fillfactor = 70);
