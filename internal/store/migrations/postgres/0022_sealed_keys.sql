-- Keys at rest: token signing keys and server secrets (the Z3 URL key, the
-- secrets key's check value) are sealed with the master key (package
-- seal), like zambda secrets. Rows written before keep their plaintext in
-- private_pem / value until the first start of this release seals them
-- and clears it (it needs the key, so it runs in Go, not here).
ALTER TABLE signing_keys ALTER COLUMN private_pem DROP NOT NULL;
ALTER TABLE signing_keys ADD COLUMN private_sealed BYTEA;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_key CHECK (private_pem IS NOT NULL OR private_sealed IS NOT NULL);
ALTER TABLE server_secrets ALTER COLUMN value DROP NOT NULL;
ALTER TABLE server_secrets ADD COLUMN sealed BYTEA;
ALTER TABLE server_secrets ADD CONSTRAINT server_secrets_value CHECK (value IS NOT NULL OR sealed IS NOT NULL);
