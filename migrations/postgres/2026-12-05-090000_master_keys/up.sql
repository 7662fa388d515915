-- The master keys this database's hashes and seals were made under, by id (a fingerprint
-- such as mk_1a2b3c4d5e6f, never the key). The current one is what every new hash and seal
-- uses; a process that does not hold it refuses to start. Earlier ones are kept as history:
-- `latchkey master-key status` shows them.
CREATE TABLE master_keys (
    id TEXT PRIMARY KEY NOT NULL,
    is_current BOOLEAN NOT NULL,
    became_current_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP
);
-- At most one current key, even when two instances record the first one at once.
CREATE UNIQUE INDEX master_keys_one_current ON master_keys (is_current) WHERE is_current;
