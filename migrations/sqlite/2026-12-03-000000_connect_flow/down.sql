ALTER TABLE api_keys DROP COLUMN created_through_client_id;
ALTER TABLE authorization_codes DROP COLUMN issued_key_id;
ALTER TABLE authorization_codes DROP COLUMN key_request;
ALTER TABLE authorization_codes DROP COLUMN requested_token_type;
ALTER TABLE device_authorizations DROP COLUMN key_request;
ALTER TABLE device_authorizations DROP COLUMN requested_token_type;
