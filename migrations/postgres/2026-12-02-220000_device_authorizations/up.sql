-- RFC 8628 device authorization: a CLI, a TV or an agent asks; a person approves at /device.
-- Both codes are stored as keyed hashes only.
CREATE TABLE device_authorizations (
    device_code_hash TEXT PRIMARY KEY NOT NULL,
    user_code_hash TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    audience TEXT NOT NULL,
    -- Where the request came from and what sent it, shown to the person asked to approve it
    -- so that a request they did not start (device-code phishing) looks foreign.
    requested_from TEXT,
    requested_by TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    -- The polling interval in seconds; each slow_down adds 5.
    interval_secs BIGINT NOT NULL,
    last_polled_at TIMESTAMP,
    -- pending, approved, denied or redeemed (tokens issued; never again)
    status TEXT NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    auth_time TIMESTAMP,
    decided_at TIMESTAMP
);
CREATE INDEX device_authorizations_expiry ON device_authorizations (expires_at);
