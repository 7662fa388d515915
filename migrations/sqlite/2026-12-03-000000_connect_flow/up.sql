-- The connect flow: a tool asks for an API key instead of tokens (requested_token_type),
-- through the device flow or the authorization-code flow, and the person who approves it
-- chooses the key's kind and reach. The choice is kept, not a key: the key is made when the
-- tool redeems its code, so none waits anywhere in the clear.
ALTER TABLE device_authorizations ADD COLUMN requested_token_type TEXT;
ALTER TABLE device_authorizations ADD COLUMN key_request TEXT;
ALTER TABLE authorization_codes ADD COLUMN requested_token_type TEXT;
ALTER TABLE authorization_codes ADD COLUMN key_request TEXT;
-- The key a code was exchanged for: revoked if the code is replayed, as its tokens would be.
ALTER TABLE authorization_codes ADD COLUMN issued_key_id TEXT;
-- The client a key was made through (a tool's connect flow, or a person's access token from
-- a client): shown with the key, kept as history even if the client goes.
ALTER TABLE api_keys ADD COLUMN created_through_client_id TEXT;
