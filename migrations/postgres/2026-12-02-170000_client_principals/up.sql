-- A client's own service principal: the tenant permissions an owner granted it, which its
-- client-credentials tokens for the management API carry (within their scopes). Stored
-- space-separated in canonical form, as a service account's; empty grants nothing.
ALTER TABLE clients ADD COLUMN permissions TEXT NOT NULL DEFAULT '';
