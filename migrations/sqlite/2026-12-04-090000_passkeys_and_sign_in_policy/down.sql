ALTER TABLE tenants DROP COLUMN require_second_factor;
DROP TABLE passkey_ceremonies;
DROP TABLE passkeys;
