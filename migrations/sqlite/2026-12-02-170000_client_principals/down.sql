ALTER TABLE clients DROP COLUMN permissions;
