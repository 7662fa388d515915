ALTER TABLE consents DROP COLUMN remembered;
