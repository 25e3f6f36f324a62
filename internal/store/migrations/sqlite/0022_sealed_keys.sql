-- Keys at rest: token signing keys and server secrets (the Z3 URL key, the
-- secrets key's check value) are sealed with the master key (package
-- seal), like zambda secrets. Rows written before keep their plaintext in
-- private_pem / value until the first start of this release seals them
-- and clears it (it needs the key, so it runs in Go, not here).
CREATE TABLE signing_keys_new (
  kid TEXT PRIMARY KEY,
  alg TEXT NOT NULL,
  private_pem TEXT,
  private_sealed BLOB,
  created_at INTEGER NOT NULL,
  retired_at INTEGER,
  CHECK (private_pem IS NOT NULL OR private_sealed IS NOT NULL)
);
INSERT INTO signing_keys_new (kid, alg, private_pem, created_at, retired_at)
  SELECT kid, alg, private_pem, created_at, retired_at FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_new RENAME TO signing_keys;

CREATE TABLE server_secrets_new (
  name TEXT PRIMARY KEY,
  value TEXT,
  sealed BLOB,
  CHECK (value IS NOT NULL OR sealed IS NOT NULL)
);
INSERT INTO server_secrets_new (name, value) SELECT name, value FROM server_secrets;
DROP TABLE server_secrets;
ALTER TABLE server_secrets_new RENAME TO server_secrets;
