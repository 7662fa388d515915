-- RFC 6749 §4.1.3: a code whose authorization request named its redirect_uri is redeemed only
-- with that same redirect_uri. Codes issued before this column live a minute: treat them as
-- having named it.
ALTER TABLE authorization_codes ADD COLUMN redirect_uri_given BOOLEAN NOT NULL DEFAULT TRUE;

-- A remembered consent is per client *and* API: letting an app read one API is no consent to
-- another API's scope of the same name. Earlier consents name no API, so they remember
-- nothing and the person is asked once more; the account page still lists them.
ALTER TABLE consents ADD COLUMN audience TEXT NOT NULL DEFAULT '';
ALTER TABLE consents DROP CONSTRAINT consents_user_id_client_id_key;
ALTER TABLE consents ADD CONSTRAINT consents_user_id_client_id_audience_key UNIQUE (user_id, client_id, audience);
