DROP INDEX refresh_tokens_retry_until;
ALTER TABLE refresh_tokens DROP COLUMN retry_until;
ALTER TABLE refresh_tokens DROP COLUMN retry_answer_sealed;
ALTER TABLE clients DROP COLUMN refresh_retry_secs;
