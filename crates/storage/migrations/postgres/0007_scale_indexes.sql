-- Indexes that a large instance needs (docs/SCALING.md). Kept in lock-step with the
-- other backend's 0007_scale_indexes.sql.

-- The hourly cleanup deletes finished registry events older than the retention by
-- received_at; without this index that is a scan of the whole table every hour (pull
-- notifications make it the biggest table).
CREATE INDEX registry_events_received_at_idx ON registry_events (received_at);

-- Repository lists sorted by name (the web UI's order: lower(name), name, id) read a
-- page from the index instead of sorting every visible repository.
CREATE INDEX repositories_lower_name_idx ON repositories (lower(name), name, id);
