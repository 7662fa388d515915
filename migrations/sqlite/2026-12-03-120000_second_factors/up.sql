-- Second factors. An authenticator app (RFC 6238 TOTP): its secret sealed under the master
-- key, counting only once confirmed with a first code; the last time step accepted, so that
-- no code is accepted twice.
CREATE TABLE totp_factors (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP,
    last_step BIGINT,
    last_used_at TIMESTAMP
);
-- Single-use recovery codes, as keyed hashes; a used one keeps its row (and when).
CREATE TABLE recovery_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);
-- A sign-in whose password was right and whose second factor is still to come. The browser
-- holds a random id; the table its keyed hash. It becomes a session only once the second
-- factor is given.
CREATE TABLE pending_sign_ins (
    id_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    ip TEXT,
    user_agent TEXT
);
-- How each sign-in was made (RFC 8176 method values, space-separated): what id tokens,
-- access tokens and introspection report as amr and acr. Sessions before this migration
-- were password sign-ins.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE authorization_codes ADD COLUMN amr TEXT;
ALTER TABLE device_authorizations ADD COLUMN amr TEXT;
-- A refresh token family keeps the sign-in it came from: refreshed access tokens report the
-- original authentication (RFC 9470 §3), not a fresh one.
ALTER TABLE refresh_tokens ADD COLUMN amr TEXT;
ALTER TABLE refresh_tokens ADD COLUMN auth_time TIMESTAMP;
