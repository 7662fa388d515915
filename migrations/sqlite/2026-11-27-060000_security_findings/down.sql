CREATE TABLE consents_by_client (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    remembered BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (user_id, client_id)
);
-- One row per app again: the newest of its consents.
INSERT INTO consents_by_client (id, user_id, client_id, scope, created_at, updated_at, remembered)
    SELECT id, user_id, client_id, scope, created_at, updated_at, remembered FROM consents AS c
    WHERE NOT EXISTS (
        SELECT 1 FROM consents AS newer
        WHERE newer.user_id = c.user_id AND newer.client_id = c.client_id
          AND (newer.updated_at > c.updated_at OR (newer.updated_at = c.updated_at AND newer.id > c.id))
    );
DROP TABLE consents;
ALTER TABLE consents_by_client RENAME TO consents;

ALTER TABLE authorization_codes DROP COLUMN redirect_uri_given;
