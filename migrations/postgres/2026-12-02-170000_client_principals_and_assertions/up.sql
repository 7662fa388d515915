-- A client's own service principal: the tenant permissions an owner granted it, which its
-- client-credentials tokens for the management API carry (within their scopes). Stored
-- space-separated in canonical form, as a service account's; empty grants nothing.
ALTER TABLE clients ADD COLUMN permissions TEXT NOT NULL DEFAULT '';

-- RFC 7523 client authentication. A client_secret_jwt client keeps its secret sealed under
-- the master key (AEAD, bound to the row), since HMAC needs it back; every other client keeps
-- only the keyed hash. A private_key_jwt client keeps its public keys (a JWK Set).
ALTER TABLE clients ADD COLUMN secret_sealed BYTEA;
ALTER TABLE clients ADD COLUMN jwks TEXT;
-- Or where to fetch them (https; cached; never a private address unless the operator allows).
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
-- Whether a tenant owner let the client present a JWT that names a user (`sub`), within
-- what that user consented to.
ALTER TABLE clients ADD COLUMN acts_for_users BOOLEAN NOT NULL DEFAULT FALSE;

-- Client assertions already used: a keyed hash of (client, jti), kept until the assertion
-- expires, so that none is accepted twice on any instance (when Redis is not configured).
CREATE TABLE used_assertions (
    assertion_hash TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX used_assertions_expiry ON used_assertions (expires_at);
