-- Inventory (SQLite): notifications, jobs, repositories, tags, stars, comments,
-- activities, webhooks. Kept in lock-step with migrations/postgres/0003_inventory.sql.

-- Registry notifications, stored before the registry gets its 2xx (persist first,
-- then acknowledge). `event_id` is the registry's own id: the registry retries a
-- delivery it thinks failed, and the unique key makes the retry a no-op.
-- `status`: pending (waiting for the worker), done, failed (with `error`), ignored
-- (blob and mount events: nothing to record), unknown_registry (kept for admins, not
-- dropped as Portus did). No foreign key on `registry_id`: the row stays when the
-- registry is removed, as evidence of what was received.
CREATE TABLE registry_events (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL CONSTRAINT registry_events_event_id_key UNIQUE,
    registry_id BIGINT,
    status TEXT NOT NULL CONSTRAINT registry_events_status_check
        CHECK (status IN ('pending', 'done', 'failed', 'ignored', 'unknown_registry')),
    action TEXT NOT NULL,
    repository TEXT NOT NULL,
    tag TEXT,
    digest TEXT,
    media_type TEXT,
    actor TEXT,
    request_host TEXT,
    data TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    occurred_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    processed_at BIGINT
);
CREATE INDEX registry_events_status_idx ON registry_events (status, id);

-- The job queue (see docs/ARCHITECTURE.md, "Background work"). A job is claimed by
-- setting state = 'running' with a lease; a worker that dies leaves the lease to
-- expire and another worker takes the job over. `singleton`: at most one queued job
-- per key (the unique index) and never two running at once (the claim query), so
-- event processing and periodic tasks run serially even with several workers.
CREATE TABLE jobs (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    singleton TEXT,
    state TEXT NOT NULL CONSTRAINT jobs_state_check
        CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at BIGINT NOT NULL,
    lease_until BIGINT,
    worker TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE UNIQUE INDEX jobs_singleton_key ON jobs (singleton) WHERE state = 'queued';
CREATE INDEX jobs_state_run_at_idx ON jobs (state, run_at);

-- Periodic tasks: whoever moves `next_run_at` forward (one guarded UPDATE) enqueues
-- the run, so with several nodes each period runs once.
CREATE TABLE schedules (
    name TEXT NOT NULL PRIMARY KEY,
    next_run_at BIGINT NOT NULL,
    last_run_at BIGINT
);

CREATE TABLE repositories (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    namespace_id BIGINT NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT repositories_namespace_id_name_key UNIQUE (namespace_id, name)
);

-- `platforms`: JSON array of {os, architecture, variant, digest, size} (one entry
-- per image of a multi-arch index; one for a single image whose config was read).
-- `author_name` is kept when the author is deleted (author_id becomes NULL).
CREATE TABLE tags (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    image_id TEXT NOT NULL DEFAULT '',
    size BIGINT NOT NULL DEFAULT 0,
    platforms TEXT NOT NULL DEFAULT '[]',
    author_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    author_name TEXT NOT NULL DEFAULT '',
    pushed_at BIGINT NOT NULL,
    pulled_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT tags_repository_id_name_key UNIQUE (repository_id, name)
);
CREATE INDEX tags_repository_id_digest_idx ON tags (repository_id, digest);
CREATE INDEX tags_author_id_idx ON tags (author_id);

CREATE TABLE stars (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    CONSTRAINT stars_user_id_repository_id_key UNIQUE (user_id, repository_id)
);
CREATE INDEX stars_repository_id_idx ON stars (repository_id);

CREATE TABLE comments (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    author_name TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX comments_repository_id_idx ON comments (repository_id);
CREATE INDEX comments_user_id_idx ON comments (user_id);

-- The audit trail. Deliberately no foreign keys: an activity outlives what it points
-- at, and the names it needs are copied into `parameters` (JSON) when it is written.
-- `namespace_id` / `team_id` scope the dashboard (Portus's union of scopes).
CREATE TABLE activities (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    owner_id BIGINT,
    owner_name TEXT NOT NULL,
    trackable_type TEXT NOT NULL,
    trackable_id BIGINT,
    recipient_type TEXT,
    recipient_id BIGINT,
    namespace_id BIGINT,
    team_id BIGINT,
    parameters TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE INDEX activities_created_at_idx ON activities (created_at);
CREATE INDEX activities_namespace_id_idx ON activities (namespace_id);
CREATE INDEX activities_team_id_idx ON activities (team_id);

-- Webhooks. `password_sealed` and `secret_sealed` are AES-256-GCM ciphertexts under
-- the data folder's key (never plaintext, never returned by the API).
-- `actions`: comma-separated subset of push,delete; `repository_glob` filters by
-- repository name ('*' = all).
CREATE TABLE webhooks (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    namespace_id BIGINT NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    request_method TEXT NOT NULL CONSTRAINT webhooks_request_method_check
        CHECK (request_method IN ('GET', 'POST')),
    content_type TEXT NOT NULL CONSTRAINT webhooks_content_type_check
        CHECK (content_type IN ('application/json', 'application/x-www-form-urlencoded')),
    username TEXT NOT NULL DEFAULT '',
    password_sealed TEXT,
    secret_sealed TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT false,
    actions TEXT NOT NULL DEFAULT 'push,delete',
    repository_glob TEXT NOT NULL DEFAULT '*',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhooks_namespace_id_idx ON webhooks (namespace_id);

CREATE TABLE webhook_headers (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    webhook_id BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX webhook_headers_webhook_id_name_key ON webhook_headers (webhook_id, lower(name));

-- One row per (webhook, event): the latest attempt's request and response; `attempts`
-- counts tries. Old rows beyond the per-webhook bound are pruned by the cleanup task.
CREATE TABLE webhook_deliveries (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    webhook_id BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    uuid TEXT NOT NULL,
    event_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    status BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    request_header TEXT NOT NULL DEFAULT '',
    request_body TEXT NOT NULL DEFAULT '',
    response_header TEXT NOT NULL DEFAULT '',
    response_body TEXT NOT NULL DEFAULT '',
    duration_ms BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT webhook_deliveries_webhook_id_uuid_key UNIQUE (webhook_id, uuid),
    CONSTRAINT webhook_deliveries_webhook_id_event_id_key UNIQUE (webhook_id, event_id)
);
