-- A refresh token minted with an application token belongs to it: revoking (deleting)
-- the application token deletes its refresh tokens, and its expiry bounds theirs.
-- NULL: minted with a password (ended by a password change or disable instead).
-- Kept in lock-step with migrations/postgres/0002_refresh_token_binding.sql.
ALTER TABLE refresh_tokens ADD COLUMN application_token_id BIGINT
    REFERENCES application_tokens (id) ON DELETE CASCADE;
CREATE INDEX refresh_tokens_application_token_id_idx ON refresh_tokens (application_token_id);
