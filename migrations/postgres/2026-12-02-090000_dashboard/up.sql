-- First start: with no user yet, `latchkey serve` logs a one-time link whose token is kept
-- here only as its keyed hash. Creating the owner account deletes every row.
CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

-- The dashboard lists keys and clients newest first, a page at a time, over many rows.
CREATE INDEX api_keys_by_time ON api_keys (tenant_id, created_at, id);
CREATE INDEX clients_by_time ON clients (tenant_id, created_at, id);
