DROP INDEX api_keys_by_time;
DROP TABLE setup_tokens;
