-- One row per app again: the newest of its consents.
DELETE FROM consents AS c WHERE EXISTS (
    SELECT 1 FROM consents AS newer
    WHERE newer.user_id = c.user_id AND newer.client_id = c.client_id
      AND (newer.updated_at > c.updated_at OR (newer.updated_at = c.updated_at AND newer.id > c.id))
);
ALTER TABLE consents DROP CONSTRAINT consents_user_id_client_id_audience_key;
ALTER TABLE consents ADD CONSTRAINT consents_user_id_client_id_key UNIQUE (user_id, client_id);
ALTER TABLE consents DROP COLUMN audience;

ALTER TABLE authorization_codes DROP COLUMN redirect_uri_given;
