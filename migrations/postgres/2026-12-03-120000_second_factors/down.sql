ALTER TABLE refresh_tokens DROP COLUMN auth_time;
ALTER TABLE refresh_tokens DROP COLUMN amr;
ALTER TABLE device_authorizations DROP COLUMN amr;
ALTER TABLE authorization_codes DROP COLUMN amr;
ALTER TABLE sessions DROP COLUMN amr;
DROP TABLE pending_sign_ins;
DROP TABLE recovery_codes;
DROP TABLE totp_factors;
