-- How long after a rotation a retried refresh (the same token, from the same client, asked
-- the same way) is given the answer the rotation gave, rather than taken for a stolen copy
-- that revokes the grant. 0 turns retries off for the client.
ALTER TABLE clients ADD COLUMN refresh_retry_secs BIGINT NOT NULL DEFAULT 30;

-- The rotation's answer (its access and refresh token), sealed under the master key (AEAD,
-- bound to the rotated token's hash), kept on the rotated token only until retry_until:
-- housekeeping erases it after, and a revoked family loses it at once.
ALTER TABLE refresh_tokens ADD COLUMN retry_answer_sealed BYTEA;
ALTER TABLE refresh_tokens ADD COLUMN retry_until TIMESTAMP;
CREATE INDEX refresh_tokens_retry_until ON refresh_tokens (retry_until) WHERE retry_until IS NOT NULL;
