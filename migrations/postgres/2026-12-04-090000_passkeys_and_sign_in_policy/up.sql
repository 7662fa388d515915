-- Passkeys (WebAuthn credentials). The public key and signature counter, as webauthn-rs
-- serialises them (nothing secret: a passkey's private key never leaves the authenticator).
-- A credential id belongs to one account only. The user handle is the random id the
-- authenticator stores with a discoverable credential, the same for all of a person's
-- passkeys, so that a sign-in without a username can name its account.
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    user_handle TEXT NOT NULL,
    name TEXT NOT NULL,
    credential TEXT NOT NULL,
    backup_eligible BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP
);
CREATE INDEX passkeys_user ON passkeys (user_id);
-- A WebAuthn ceremony under way: the challenge and what the server expects back, kept here
-- (not in the browser) and taken once, so that a challenge cannot be answered twice. The
-- browser holds a random id; the table its keyed hash.
CREATE TABLE passkey_ceremonies (
    id_hash TEXT PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX passkey_ceremonies_user ON passkey_ceremonies (user_id);
CREATE INDEX passkey_ceremonies_expiry ON passkey_ceremonies (expires_at);
-- The tenant's sign-in policy: when set, a person without a second factor must set one up
-- before a password sign-in finishes.
ALTER TABLE tenants ADD COLUMN require_second_factor BOOLEAN NOT NULL DEFAULT FALSE;
