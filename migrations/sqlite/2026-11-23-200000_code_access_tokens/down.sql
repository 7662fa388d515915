ALTER TABLE authorization_codes DROP COLUMN access_token_expires_at;
ALTER TABLE authorization_codes DROP COLUMN access_token_jti;
