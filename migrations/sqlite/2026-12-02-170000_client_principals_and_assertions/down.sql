DROP TABLE used_assertions;
ALTER TABLE clients DROP COLUMN acts_for_users;
ALTER TABLE clients DROP COLUMN jwks_uri;
ALTER TABLE clients DROP COLUMN jwks;
ALTER TABLE clients DROP COLUMN secret_sealed;
ALTER TABLE clients DROP COLUMN permissions;
