-- The access token issued with each refresh token, so revoking a grant
-- (revocation, or a refresh token used twice) revokes its access tokens.
ALTER TABLE refresh_tokens ADD COLUMN access_jti TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN access_expires_at BIGINT NOT NULL DEFAULT 0;
