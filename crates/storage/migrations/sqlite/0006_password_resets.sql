-- Single-use password reset tokens (valid 6 hours, as Portus/Devise). Only the SHA-256
-- of the token is stored; using one marks it used in the statement that checks it.
-- Kept in lock-step with the other backend's 0006_password_resets.sql.
CREATE TABLE password_resets (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL CONSTRAINT password_resets_token_hash_key UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX password_resets_user_id_idx ON password_resets (user_id);
