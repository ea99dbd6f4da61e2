-- The hourly cleanup deletes finished registry events older than the retention by
-- received_at; without this index that is a scan of the whole table every hour (pull
-- notifications make it the biggest table). Kept in lock-step with the other backend's
-- 0007_event_retention_index.sql.
CREATE INDEX registry_events_received_at_idx ON registry_events (received_at);
