//! Received registry notifications: stored before they are acknowledged, then worked
//! off in arrival order by the `process_events` job.

use crate::db::{RowGet, execute, fetch_all, fetch_one, fetch_optional};
use crate::jobs::enqueue;
use crate::{Page, PageRequest, Sort, Store, StoreError, StoreResult};
use portcullis_domain::inventory::{EventStatus, NewJob, NewRegistryEvent, RegistryEvent};
use portcullis_domain::model::Id;
use portcullis_domain::time::Timestamp;

const EVENT_COLUMNS: &str = "id, event_id, registry_id, status, action, repository, tag, digest, \
     media_type, actor, request_host, data, attempts, error, occurred_at, received_at, processed_at";

const SORTABLE: &[(&str, Sort)] = &[
    ("id", Sort::Plain),
    ("received_at", Sort::Plain),
    ("occurred_at", Sort::Plain),
    ("status", Sort::Plain),
    ("action", Sort::Plain),
    ("repository", Sort::Text),
];

fn event_row<R: RowGet>(r: &R) -> StoreResult<RegistryEvent> {
    let status: String = r.col("status")?;
    Ok(RegistryEvent {
        id: r.col("id")?,
        event_id: r.col("event_id")?,
        registry_id: r.col("registry_id")?,
        status: EventStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("unknown event status {status:?}")))?,
        action: r.col("action")?,
        repository: r.col("repository")?,
        tag: r.col("tag")?,
        digest: r.col("digest")?,
        media_type: r.col("media_type")?,
        actor: r.col("actor")?,
        request_host: r.col("request_host")?,
        data: r.col("data")?,
        attempts: r.col("attempts")?,
        error: r.col("error")?,
        occurred_at: Timestamp(r.col("occurred_at")?),
        received_at: Timestamp(r.col("received_at")?),
        processed_at: r.col::<Option<i64>>("processed_at")?.map(Timestamp),
    })
}

/// Which events a listing shows; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub status: Option<EventStatus>,
    pub action: Option<String>,
    pub repository: Option<String>,
    pub registry_id: Option<Id>,
}

/// Group commit for [`Store::store_events`]. A registry posts one envelope (one event,
/// for distribution 2.8) per request, many at once, and on SQLite every transaction
/// queues for the single writing connection; committing each alone made the
/// transaction overhead (begin, wake-up job, commit) the cost of intake. Callers
/// instead leave their envelope in `waiting`, then take turns on `writer`: whoever
/// holds it writes everything waiting in one transaction and answers each caller.
/// Every caller still gets its own result, and nobody is answered before its events
/// are committed.
#[derive(Default)]
pub(crate) struct GroupCommit {
    waiting: std::sync::Mutex<Vec<Submission>>,
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

struct Submission {
    events: Vec<NewRegistryEvent>,
    wake: NewJob,
    now: Timestamp,
    answer: tokio::sync::oneshot::Sender<StoreResult<u64>>,
}

impl GroupCommit {
    fn take_waiting(&self) -> Vec<Submission> {
        let mut waiting = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *waiting)
    }
}

impl Store {
    /// Stores `events` (an event id seen before is skipped, so a registry's retry
    /// stores nothing twice) and, when one of them waits for processing, queues `wake`
    /// too, in one transaction, possibly shared with concurrent calls (see
    /// [`GroupCommit`]). Returns how many were new.
    pub async fn store_events(
        &self,
        events: &[NewRegistryEvent],
        wake: &NewJob,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.intake
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Submission {
                events: events.to_vec(),
                wake: wake.clone(),
                now,
                answer,
            });
        // Whoever held the writer before us either took our submission (and answered
        // it before letting go) or left it waiting for us.
        let turn = self.intake.writer.clone().lock_owned().await;
        let batch = self.intake.take_waiting();
        if !batch.is_empty() {
            // In a task of its own, so a caller that goes away (its client hung up)
            // cannot abandon a transaction other callers are waiting for.
            let store = self.clone();
            let written = tokio::spawn(async move {
                store.write_submissions(batch).await;
                drop(turn);
            });
            let _ = written.await;
        }
        answered.await.unwrap_or_else(|_| {
            Err(StoreError::Other(
                "the transaction storing these events was abandoned".to_owned(),
            ))
        })
    }

    /// Writes `batch` in one transaction. When that fails and it held several
    /// envelopes, each is tried alone, so one caller's trouble is not the others'.
    async fn write_submissions(&self, batch: Vec<Submission>) {
        if batch.len() > 1 {
            let parts: Vec<&[NewRegistryEvent]> =
                batch.iter().map(|s| s.events.as_slice()).collect();
            let last = &batch[batch.len() - 1];
            if let Ok(counts) = self.insert_events(&parts, &last.wake, last.now).await {
                for (submission, stored) in batch.into_iter().zip(counts) {
                    let _ = submission.answer.send(Ok(stored));
                }
                return;
            }
        }
        for submission in batch {
            let result = self
                .insert_events(&[&submission.events], &submission.wake, submission.now)
                .await
                .map(|counts| counts[0]);
            let _ = submission.answer.send(result);
        }
    }

    /// One transaction: every envelope of `parts`, then `wake` when an event that
    /// waits for processing was new. How many events of each envelope were new.
    async fn insert_events(
        &self,
        parts: &[&[NewRegistryEvent]],
        wake: &NewJob,
        now: Timestamp,
    ) -> StoreResult<Vec<u64>> {
        let mut tx = self.db.begin().await?;
        let mut counts = Vec::with_capacity(parts.len());
        let mut pending = false;
        for events in parts {
            let mut stored = 0;
            for e in *events {
                let n = execute!(
                    tx.conn(),
                    "INSERT INTO registry_events (event_id, registry_id, status, action, \
                     repository, tag, digest, media_type, actor, request_host, data, attempts, \
                     occurred_at, received_at, processed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, $13, $14) \
                     ON CONFLICT (event_id) DO NOTHING",
                    [
                        e.event_id.as_str(),
                        e.registry_id,
                        e.status.as_str(),
                        e.action.as_str(),
                        e.repository.as_str(),
                        e.tag.as_deref(),
                        e.digest.as_deref(),
                        e.media_type.as_deref(),
                        e.actor.as_deref(),
                        e.request_host.as_deref(),
                        e.data.as_str(),
                        e.occurred_at.0,
                        now.0,
                        (e.status != EventStatus::Pending).then_some(now.0),
                    ]
                );
                stored += n;
                pending |= n == 1 && e.status == EventStatus::Pending;
            }
            counts.push(stored);
        }
        if pending {
            enqueue(tx.conn(), wake, now).await?;
            tx.notify_jobs().await?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    /// The oldest `limit` events waiting for processing, in arrival order.
    pub async fn pending_events(&self, limit: i64) -> StoreResult<Vec<RegistryEvent>> {
        let mut c = self.db.reader().await?;
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM registry_events WHERE status = 'pending' \
             ORDER BY id LIMIT $1"
        );
        Ok(fetch_all!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [limit],
            |r| event_row(r)
        ))
    }

    /// Marks a pending event processed (`done`, `failed` with `error`, or `ignored`).
    pub async fn finish_event(
        &self,
        id: Id,
        status: EventStatus,
        error: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut c = self.db.writer().await?;
        execute!(
            c.conn(),
            "UPDATE registry_events SET status = $1, error = $2, processed_at = $3, \
             attempts = attempts + 1 WHERE id = $4 AND status = 'pending'",
            [status.as_str(), error, now.0, id]
        );
        Ok(())
    }

    /// Counts a failed attempt at an event that stays pending; returns the attempts.
    pub async fn event_attempt_failed(&self, id: Id, error: &str) -> StoreResult<i64> {
        let mut c = self.db.writer().await?;
        Ok(fetch_one!(
            c.conn(),
            "UPDATE registry_events SET attempts = attempts + 1, error = $1 WHERE id = $2 \
             RETURNING attempts",
            [error, id],
            |r| r.col::<i64>("attempts")
        ))
    }

    pub async fn event_by_id(&self, id: Id) -> StoreResult<Option<RegistryEvent>> {
        let mut c = self.db.reader().await?;
        let sql = format!("SELECT {EVENT_COLUMNS} FROM registry_events WHERE id = $1");
        Ok(fetch_optional!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [id],
            |r| event_row(r)
        ))
    }

    pub async fn list_events(
        &self,
        filter: &EventFilter,
        page: PageRequest,
    ) -> StoreResult<Page<RegistryEvent>> {
        let mut c = self.db.reader().await?;
        let cond = "WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR action = $2) \
                    AND ($3 IS NULL OR repository = $3) AND ($4 IS NULL OR registry_id = $4)";
        let args = (
            filter.status.map(EventStatus::as_str),
            filter.action.as_deref(),
            filter.repository.as_deref(),
            filter.registry_id,
        );
        let list = format!(
            "SELECT {EVENT_COLUMNS} FROM registry_events e {cond}{}",
            page.clause("e", SORTABLE)
        );
        let items = fetch_all!(
            c.conn(),
            sqlx::AssertSqlSafe(list),
            [args.0, args.1, args.2, args.3],
            |r| event_row(r)
        );
        let count = format!("SELECT count(*) AS n FROM registry_events {cond}");
        let total = fetch_one!(
            c.conn(),
            sqlx::AssertSqlSafe(count),
            [args.0, args.1, args.2, args.3],
            |r| r.col::<i64>("n")
        );
        Ok(Page { items, total })
    }

    /// The newest stored event's row id (0 when there is none): a sync notes it when
    /// it starts, to let events that arrive meanwhile win.
    pub async fn last_event_row_id(&self) -> StoreResult<Id> {
        let mut c = self.db.reader().await?;
        Ok(fetch_one!(
            c.conn(),
            "SELECT CAST(coalesce(max(id), 0) AS BIGINT) AS n FROM registry_events",
            [],
            |r| r.col::<i64>("n")
        ))
    }

    /// Repositories (full names) of `registry_id` that events stored after row
    /// `after` concern.
    pub async fn repositories_with_events_after(
        &self,
        registry_id: Id,
        after: Id,
    ) -> StoreResult<Vec<String>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_all!(
            c.conn(),
            "SELECT DISTINCT repository FROM registry_events \
             WHERE registry_id = $1 AND id > $2 AND action IN ('push', 'delete') \
             ORDER BY repository",
            [registry_id, after],
            |r| r.col::<String>("repository")
        ))
    }

    /// Deletes processed events received before `before` (pending ones always stay).
    pub async fn prune_events(&self, before: Timestamp) -> StoreResult<u64> {
        let mut c = self.db.writer().await?;
        Ok(execute!(
            c.conn(),
            "DELETE FROM registry_events WHERE status <> 'pending' AND received_at < $1",
            [before.0]
        ))
    }
}
