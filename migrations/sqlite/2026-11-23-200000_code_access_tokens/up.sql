-- The access token minted from a code, so that replaying the code can revoke it
-- (RFC 9700 §4.5.1: a reused code revokes the tokens issued with it).
ALTER TABLE authorization_codes ADD COLUMN access_token_jti TEXT;
ALTER TABLE authorization_codes ADD COLUMN access_token_expires_at TIMESTAMP;
