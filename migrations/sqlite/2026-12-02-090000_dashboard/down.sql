DROP INDEX clients_by_time;
DROP INDEX api_keys_by_time;
DROP TABLE setup_tokens;
