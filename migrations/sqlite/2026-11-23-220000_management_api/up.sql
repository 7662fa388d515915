-- A user's standing in the tenant: `owner` reaches everything, as a tenant-owner key does;
-- `member` reaches its own things and its teams'.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
-- An invited user has no password until they accept: the invitation is a one-time token,
-- stored as its keyed hash like every other secret.
ALTER TABLE users ADD COLUMN invite_token_hash TEXT;
ALTER TABLE users ADD COLUMN invite_expires_at TIMESTAMP;
CREATE UNIQUE INDEX users_invite_token ON users (invite_token_hash);
CREATE INDEX api_keys_user ON api_keys (user_id);
CREATE INDEX team_members_user ON team_members (user_id);
