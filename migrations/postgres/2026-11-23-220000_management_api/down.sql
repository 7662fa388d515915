DROP INDEX team_members_user;
DROP INDEX api_keys_user;
DROP INDEX users_invite_token;
ALTER TABLE users DROP COLUMN invite_expires_at;
ALTER TABLE users DROP COLUMN invite_token_hash;
ALTER TABLE users DROP COLUMN role;
