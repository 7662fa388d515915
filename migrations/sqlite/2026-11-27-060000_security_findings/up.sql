-- RFC 6749 §4.1.3: a code whose authorization request named its redirect_uri is redeemed only
-- with that same redirect_uri. Codes issued before this column live a minute: treat them as
-- having named it.
ALTER TABLE authorization_codes ADD COLUMN redirect_uri_given BOOLEAN NOT NULL DEFAULT TRUE;

-- A remembered consent is per client *and* API: letting an app read one API is no consent to
-- another API's scope of the same name. SQLite changes a UNIQUE constraint by rebuilding the
-- table. Earlier consents name no API, so they remember nothing and the person is asked once
-- more; the account page still lists them.
CREATE TABLE consents_by_audience (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    audience TEXT NOT NULL DEFAULT '',
    scope TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    remembered BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (user_id, client_id, audience)
);
INSERT INTO consents_by_audience (id, user_id, client_id, audience, scope, created_at, updated_at, remembered)
    SELECT id, user_id, client_id, '', scope, created_at, updated_at, remembered FROM consents;
DROP TABLE consents;
ALTER TABLE consents_by_audience RENAME TO consents;
