-- Initial schema (SQLite). Kept in lock-step with migrations/postgres/0001_initial.sql:
-- the same tables, columns, nullability, and constraint/index names, because the names
-- are how unique violations are mapped to the field that was taken.
--
-- Ids use AUTOINCREMENT so that the id of a deleted row is never handed out again (a
-- reused user id could otherwise inherit what still refers to the old one); PostgreSQL
-- identity columns never reuse values either. Timestamps are unix milliseconds passed
-- from Rust. Booleans are BOOLEAN (stored as 0/1 by SQLite).

CREATE TABLE registries (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL CONSTRAINT registries_name_key UNIQUE,
    hostname TEXT NOT NULL CONSTRAINT registries_hostname_key UNIQUE,
    use_ssl BOOLEAN NOT NULL,
    external_hostname TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE users (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL,
    email TEXT NOT NULL,
    display_name TEXT,
    password_hash TEXT,
    admin BOOLEAN NOT NULL DEFAULT false,
    enabled BOOLEAN NOT NULL DEFAULT true,
    bot BOOLEAN NOT NULL DEFAULT false,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    locked_at BIGINT,
    credential_version BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
-- Portus allowed several users without an email (LDAP, bots).
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email <> '';
CREATE UNIQUE INDEX users_display_name_key ON users (display_name) WHERE display_name IS NOT NULL;

CREATE TABLE teams (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    hidden BOOLEAN NOT NULL DEFAULT false,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX teams_name_key ON teams (lower(name));

CREATE TABLE team_users (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    team_id BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role BIGINT NOT NULL CONSTRAINT team_users_role_check CHECK (role IN (0, 1, 2)),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT team_users_team_id_user_id_key UNIQUE (team_id, user_id)
);
CREATE INDEX team_users_user_id_idx ON team_users (user_id);

CREATE TABLE namespaces (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    registry_id BIGINT NOT NULL REFERENCES registries (id) ON DELETE CASCADE,
    team_id BIGINT NOT NULL REFERENCES teams (id),
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL CONSTRAINT namespaces_kind_check CHECK (kind IN ('global', 'personal', 'team')),
    visibility BIGINT NOT NULL CONSTRAINT namespaces_visibility_check CHECK (visibility IN (0, 1, 2)),
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT namespaces_registry_id_name_key UNIQUE (registry_id, name)
);
CREATE INDEX namespaces_team_id_idx ON namespaces (team_id);
CREATE UNIQUE INDEX namespaces_registry_id_user_id_key ON namespaces (registry_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX namespaces_global_key ON namespaces (registry_id) WHERE kind = 'global';

CREATE TABLE application_tokens (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    application TEXT NOT NULL,
    token_hash TEXT NOT NULL CONSTRAINT application_tokens_token_hash_key UNIQUE,
    pull_only BOOLEAN NOT NULL DEFAULT false,
    expires_at BIGINT,
    last_used_at BIGINT,
    created_at BIGINT NOT NULL,
    CONSTRAINT application_tokens_user_id_application_key UNIQUE (user_id, application)
);

CREATE TABLE refresh_tokens (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    client_id TEXT NOT NULL DEFAULT '',
    token_hash TEXT NOT NULL CONSTRAINT refresh_tokens_token_hash_key UNIQUE,
    last_used_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);
