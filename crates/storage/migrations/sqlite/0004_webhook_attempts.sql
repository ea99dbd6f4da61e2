-- Every attempt of a webhook delivery, kept with the delivery (and pruned with it).
-- The delivery row keeps the latest attempt too, for lists. Kept in lock-step with
-- the other backend's 0004_webhook_attempts.sql.
CREATE TABLE webhook_delivery_attempts (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    delivery_id BIGINT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt BIGINT NOT NULL,
    status BIGINT,
    error TEXT,
    request_header TEXT NOT NULL,
    request_body TEXT NOT NULL,
    response_header TEXT NOT NULL,
    response_body TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_delivery_attempts_delivery_id_idx ON webhook_delivery_attempts (delivery_id, id);
