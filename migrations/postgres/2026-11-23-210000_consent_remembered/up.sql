-- Every approval is recorded, so the account page lists every app holding a grant; only
-- remembered ones skip the consent page next time.
ALTER TABLE consents ADD COLUMN remembered BOOLEAN NOT NULL DEFAULT FALSE;
