-- The whole product's schema. Times are UTC; ids are generated in Rust.
-- Secrets never appear here in the clear: `*_hash` columns hold keyed HMAC-SHA256
-- digests, `*_sealed` columns AES-256-GCM ciphertext under the master key.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    name TEXT,
    password_hash TEXT,
    -- active | deactivated | deleted; deleted rows stay so that their keys stay dead.
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP
);
CREATE UNIQUE INDEX users_live_email ON users (tenant_id, email) WHERE status <> 'deleted';

CREATE TABLE teams (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE team_members (
    team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- viewer | editor | admin
    role TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (team_id, user_id)
);

CREATE TABLE service_accounts (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- space-separated tenant permissions, e.g. AUDIT_LOG_READ
    permissions TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Resource servers ("APIs"): the audiences tokens are minted for.
CREATE TABLE apis (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    team_id TEXT REFERENCES teams (id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    audience TEXT NOT NULL UNIQUE,
    -- RS256 (tenant signing keys) | HS256 (secret_sealed)
    signing_alg TEXT NOT NULL,
    secret_sealed BLOB,
    scopes TEXT NOT NULL,
    token_lifetime_secs BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE clients (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    team_id TEXT REFERENCES teams (id) ON DELETE SET NULL,
    client_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    secret_hash TEXT,
    -- kept during a rotation's grace period
    previous_secret_hash TEXT,
    previous_secret_expires_at TIMESTAMP,
    token_endpoint_auth_method TEXT NOT NULL,
    -- space-separated lists; URIs cannot contain spaces
    grant_types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    audiences TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    algorithm TEXT NOT NULL,
    private_key_sealed BLOB NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    -- set when a newer key takes over signing
    retired_at TIMESTAMP,
    -- the retired key stays in the JWKS until every token it signed has expired
    publish_until TIMESTAMP
);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    ip TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    audience TEXT NOT NULL,
    code_challenge TEXT,
    nonce TEXT,
    auth_time TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    -- kept after use so that a replay can be detected and its tokens revoked
    consumed_at TIMESTAMP
);

CREATE TABLE refresh_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    family_id TEXT NOT NULL,
    parent_id TEXT,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    audience TEXT NOT NULL,
    auth_code_hash TEXT,
    -- the access token minted alongside, so that a family revocation reaches it
    access_token_jti TEXT NOT NULL,
    access_token_expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_client ON refresh_tokens (user_id, client_id);

-- Access tokens are stateless JWTs; revoking one records its jti until it expires.
CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);

CREATE TABLE consents (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (user_id, client_id)
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- personal | service | team | tenant_owner | restricted
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    -- live | test
    environment TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    display_prefix TEXT NOT NULL,
    last_four TEXT NOT NULL,
    user_id TEXT REFERENCES users (id),
    created_by_user_id TEXT REFERENCES users (id),
    service_account_id TEXT REFERENCES service_accounts (id) ON DELETE CASCADE,
    team_id TEXT REFERENCES teams (id) ON DELETE CASCADE,
    team_role TEXT,
    permissions TEXT NOT NULL,
    tier TEXT,
    expires_at TIMESTAMP,
    last_used_at TIMESTAMP,
    last_used_ip TEXT,
    revoked_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT,
    occurred_at TIMESTAMP NOT NULL,
    -- user | service_account | api_key | client | system | anonymous
    actor_type TEXT NOT NULL,
    actor_id TEXT,
    action TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    -- success | failure
    outcome TEXT NOT NULL,
    ip TEXT,
    request_id TEXT,
    details TEXT NOT NULL
);
CREATE INDEX audit_events_by_time ON audit_events (tenant_id, occurred_at, id);

-- A single-tenant deployment's tenant; INTERFACE §5 calls its owners "tenant owners".
INSERT INTO tenants (id, name, created_at) VALUES ('default', 'Default tenant', strftime('%Y-%m-%d %H:%M:%f', 'now'));
