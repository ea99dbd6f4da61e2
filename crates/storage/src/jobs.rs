//! The job queue and the periodic-task schedule (see `docs/ARCHITECTURE.md`,
//! "Background work").
//!
//! Claiming is one statement: PostgreSQL picks the row with `FOR UPDATE SKIP LOCKED`,
//! so concurrent workers never take the same job and never wait for each other;
//! SQLite has a single writer, so the same statement without the locking clause is
//! already exclusive. Completions are guarded by worker and attempt: a worker whose
//! lease expired (and whose job was taken over) cannot overwrite the new run's result.

use crate::db::{Conn, RowGet, execute, fetch_all, fetch_one, fetch_optional};
use crate::{Page, PageRequest, Sort, Store, StoreError, StoreResult};
use portcullis_domain::inventory::{Job, JobState, NewJob};
use portcullis_domain::model::Id;
use portcullis_domain::time::Timestamp;

/// The PostgreSQL channel a new job is announced on.
pub const JOBS_CHANNEL: &str = "portcullis_jobs";
/// Announces writes that change what a token grants, so every node clears its
/// authorization-fact cache at once (the payload names the node that wrote).
pub const GRANTS_CHANNEL: &str = "portcullis_grants";

const JOB_COLUMNS: &str = "id, kind, payload, singleton, state, attempts, max_attempts, run_at, \
     lease_until, worker, last_error, created_at, updated_at, finished_at";

const SORTABLE: &[(&str, Sort)] = &[
    ("id", Sort::Plain),
    ("kind", Sort::Plain),
    ("state", Sort::Plain),
    ("run_at", Sort::Plain),
    ("updated_at", Sort::Plain),
];

pub(crate) fn job_row<R: RowGet>(r: &R) -> StoreResult<Job> {
    let state: String = r.col("state")?;
    Ok(Job {
        id: r.col("id")?,
        kind: r.col("kind")?,
        payload: r.col("payload")?,
        singleton: r.col("singleton")?,
        state: JobState::parse(&state)
            .ok_or_else(|| StoreError::Other(format!("unknown job state {state:?}")))?,
        attempts: r.col("attempts")?,
        max_attempts: r.col("max_attempts")?,
        run_at: Timestamp(r.col("run_at")?),
        lease_until: r.col::<Option<i64>>("lease_until")?.map(Timestamp),
        worker: r.col("worker")?,
        last_error: r.col("last_error")?,
        created_at: Timestamp(r.col("created_at")?),
        updated_at: Timestamp(r.col("updated_at")?),
        finished_at: r.col::<Option<i64>>("finished_at")?.map(Timestamp),
    })
}

/// Which jobs a listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub kind: Option<String>,
}

/// Inserts `job` unless it is a singleton that is already queued (`None` then). The
/// caller's transaction announces it with `Tx::notify_jobs`.
pub(crate) async fn enqueue(
    conn: Conn<'_>,
    job: &NewJob,
    now: Timestamp,
) -> StoreResult<Option<Id>> {
    let id: Option<Id> = fetch_optional!(
        conn,
        "INSERT INTO jobs (kind, payload, singleton, state, attempts, max_attempts, run_at, \
         created_at, updated_at) VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $6) \
         ON CONFLICT (singleton) WHERE state = 'queued' DO NOTHING RETURNING id",
        [
            job.kind.as_str(),
            job.payload.as_str(),
            job.singleton.as_deref(),
            job.max_attempts,
            job.run_at.0,
            now.0,
        ],
        |r| r.col::<Id>("id")
    );
    Ok(id)
}

impl Store {
    /// Queues a job (see [`enqueue`]): `None` when its singleton is already queued.
    pub async fn enqueue_job(&self, job: &NewJob, now: Timestamp) -> StoreResult<Option<Id>> {
        let mut tx = self.db.begin().await?;
        let id = enqueue(tx.conn(), job, now).await?;
        tx.notify_jobs().await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Takes the next due job (or one whose lease expired) for `worker` until
    /// `lease_until`, counting the attempt. A singleton job is not taken while another
    /// job with the same key is running, so those run one after the other.
    pub async fn claim_job(
        &self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Option<Job>> {
        let lock = if self.db.is_sqlite() {
            ""
        } else {
            " FOR UPDATE SKIP LOCKED"
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $2, \
             worker = $3, updated_at = $1 WHERE id = (SELECT j.id FROM jobs j \
             WHERE ((j.state = 'queued' AND j.run_at <= $1) \
                 OR (j.state = 'running' AND j.lease_until < $1)) \
             AND (j.singleton IS NULL OR NOT EXISTS (SELECT 1 FROM jobs r \
                 WHERE r.singleton = j.singleton AND r.state = 'running' AND r.id <> j.id)) \
             ORDER BY j.run_at, j.id LIMIT 1{lock}) RETURNING {JOB_COLUMNS}"
        );
        let mut c = self.db.writer().await?;
        Ok(fetch_optional!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [now.0, lease_until.0, worker],
            |r| job_row(r)
        ))
    }

    /// Extends the lease of a running job; `false` when the job is no longer this
    /// worker's attempt (taken over, cancelled).
    pub async fn extend_job_lease(
        &self,
        job: &Job,
        worker: &str,
        lease_until: Timestamp,
    ) -> StoreResult<bool> {
        let mut c = self.db.writer().await?;
        let n = execute!(
            c.conn(),
            "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND worker = $3 AND attempts = $4 \
             AND state = 'running'",
            [lease_until.0, job.id, worker, job.attempts]
        );
        Ok(n == 1)
    }

    /// Marks this worker's attempt done; `false` if it was not (any more) its attempt.
    pub async fn complete_job(&self, job: &Job, worker: &str, now: Timestamp) -> StoreResult<bool> {
        let mut c = self.db.writer().await?;
        let n = execute!(
            c.conn(),
            "UPDATE jobs SET state = 'done', lease_until = NULL, last_error = NULL, \
             updated_at = $1, finished_at = $1 \
             WHERE id = $2 AND worker = $3 AND attempts = $4 AND state = 'running'",
            [now.0, job.id, worker, job.attempts]
        );
        Ok(n == 1)
    }

    /// Records a failed attempt. With `retry_at` and attempts left the job is queued
    /// again for then; otherwise it is parked as failed with `error`. A singleton whose
    /// key was queued again meanwhile is not re-queued (the queued sibling does the same
    /// work); the sibling waits at least until `retry_at` instead, so backoff holds.
    pub async fn fail_job(
        &self,
        job: &Job,
        worker: &str,
        error: &str,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.db.begin().await?;
        let retry = retry_at.filter(|_| job.attempts < job.max_attempts);
        let sibling: Option<Id> = match (&job.singleton, retry) {
            (Some(key), Some(_)) => fetch_optional!(
                tx.conn(),
                "SELECT id FROM jobs WHERE singleton = $1 AND state = 'queued' AND id <> $2",
                [key.as_str(), job.id],
                |r| r.col::<Id>("id")
            ),
            _ => None,
        };
        let (state, run_at) = match (retry, sibling) {
            (Some(at), None) => ("queued", at),
            (Some(_), Some(_)) => ("cancelled", job.run_at),
            (None, _) => ("failed", job.run_at),
        };
        let finished = (state != "queued").then_some(now.0);
        let n = execute!(
            tx.conn(),
            "UPDATE jobs SET state = $1, run_at = $2, lease_until = NULL, last_error = $3, \
             updated_at = $4, finished_at = $5 \
             WHERE id = $6 AND worker = $7 AND attempts = $8 AND state = 'running'",
            [
                state,
                run_at.0,
                error,
                now.0,
                finished,
                job.id,
                worker,
                job.attempts
            ]
        );
        // Only this worker's attempt may delay the sibling (not one taken over).
        if let (1, Some(at), Some(sibling)) = (n, retry, sibling) {
            execute!(
                tx.conn(),
                "UPDATE jobs SET run_at = CASE WHEN run_at < $1 THEN $1 ELSE run_at END \
                 WHERE id = $2",
                [at.0, sibling]
            );
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    pub async fn job_by_id(&self, id: Id) -> StoreResult<Option<Job>> {
        let mut c = self.db.reader().await?;
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        Ok(fetch_optional!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [id],
            |r| job_row(r)
        ))
    }

    pub async fn list_jobs(&self, filter: &JobFilter, page: PageRequest) -> StoreResult<Page<Job>> {
        let mut c = self.db.reader().await?;
        let state = filter.state.map(JobState::as_str);
        let kind = filter.kind.as_deref();
        let cond = "WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR kind = $2)";
        let list = format!(
            "SELECT {JOB_COLUMNS} FROM jobs j {cond}{}",
            page.clause("j", SORTABLE)
        );
        let items = fetch_all!(c.conn(), sqlx::AssertSqlSafe(list), [state, kind], |r| {
            job_row(r)
        });
        let count = format!("SELECT count(*) AS n FROM jobs {cond}");
        let total = fetch_one!(c.conn(), sqlx::AssertSqlSafe(count), [state, kind], |r| r
            .col::<i64>(
            "n"
        ));
        Ok(Page { items, total })
    }

    /// Jobs waiting to run (queued), for health and metrics.
    pub async fn queued_jobs(&self) -> StoreResult<i64> {
        let mut c = self.db.reader().await?;
        Ok(fetch_one!(
            c.conn(),
            "SELECT count(*) AS n FROM jobs WHERE state = 'queued'",
            [],
            |r| r.col::<i64>("n")
        ))
    }

    /// Jobs waiting to run, by kind (kinds with none are absent).
    pub async fn queued_jobs_by_kind(&self) -> StoreResult<Vec<(String, i64)>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_all!(
            c.conn(),
            "SELECT kind, count(*) AS n FROM jobs WHERE state = 'queued' GROUP BY kind",
            [],
            |r| Ok::<_, crate::error::StoreError>((r.col::<String>("kind")?, r.col::<i64>("n")?))
        ))
    }

    /// This process's database connections: (in use, idle).
    pub fn connections(&self) -> (u32, u32) {
        self.db.connections()
    }

    /// Puts a parked (failed or cancelled) job back in the queue with fresh attempts.
    /// `NotFound` for other states; `Conflict("job")` if its singleton is queued already.
    pub async fn retry_job(&self, id: Id, now: Timestamp) -> StoreResult<Job> {
        let mut c = self.db.writer().await?;
        let sql = format!(
            "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $1, updated_at = $1, \
             finished_at = NULL, worker = NULL WHERE id = $2 AND state IN ('failed', 'cancelled') \
             RETURNING {JOB_COLUMNS}"
        );
        fetch_optional!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [now.0, id],
            |r| job_row(r)
        )
        .ok_or(StoreError::NotFound)
    }

    /// Cancels a queued or parked job. `NotFound` for running or finished ones.
    pub async fn cancel_job(&self, id: Id, now: Timestamp) -> StoreResult<Job> {
        let mut c = self.db.writer().await?;
        let sql = format!(
            "UPDATE jobs SET state = 'cancelled', updated_at = $1, finished_at = $1 \
             WHERE id = $2 AND state IN ('queued', 'failed') RETURNING {JOB_COLUMNS}"
        );
        fetch_optional!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [now.0, id],
            |r| job_row(r)
        )
        .ok_or(StoreError::NotFound)
    }

    /// Deletes finished (done or cancelled) jobs that finished before `before`.
    pub async fn prune_jobs(&self, before: Timestamp) -> StoreResult<u64> {
        let mut c = self.db.writer().await?;
        Ok(execute!(
            c.conn(),
            "DELETE FROM jobs WHERE state IN ('done', 'cancelled') AND finished_at < $1",
            [before.0]
        ))
    }

    /// The periodic task `name` is due: one node moves its next run `period_ms` ahead
    /// and queues `job` (a singleton), in one transaction. `true` for that node only.
    /// A task seen for the first time is due at once.
    pub async fn claim_schedule(
        &self,
        name: &str,
        period_ms: i64,
        job: &NewJob,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.db.begin().await?;
        execute!(
            tx.conn(),
            "INSERT INTO schedules (name, next_run_at) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
            [name, now.0]
        );
        let claimed = execute!(
            tx.conn(),
            "UPDATE schedules SET next_run_at = $1, last_run_at = $2 \
             WHERE name = $3 AND next_run_at <= $2",
            [now.0.saturating_add(period_ms), now.0, name]
        );
        if claimed == 1 {
            enqueue(tx.conn(), job, now).await?;
            tx.notify_jobs().await?;
        }
        tx.commit().await?;
        Ok(claimed == 1)
    }
}

/// One node's candidacy for the leadership of a role (the periodic scheduler, say).
/// On PostgreSQL the leadership is a session advisory lock on a connection of the
/// candidacy's own, outside the pool, opened once and kept between tries: the lock
/// lives exactly as long as that connection, so a node that dies or loses the database
/// loses it and the server hands it to the next candidate that asks. On SQLite (one
/// process) a flag of the store stands in for it. Dropping the candidacy resigns.
pub struct Candidacy {
    key: i64,
    holder: Holder,
}

enum Holder {
    Postgres {
        pool: sqlx::PgPool,
        conn: Option<sqlx::PgConnection>,
        leading: bool,
    },
    Sqlite {
        flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
        leading: bool,
    },
}

impl Candidacy {
    /// Whether this candidate leads now: a leader keeps leading while its connection
    /// answers; anyone else takes the lock if nobody holds it. An error (the database
    /// unreachable) means "not leading" until a later call succeeds.
    pub async fn lead(&mut self) -> StoreResult<bool> {
        use std::sync::atomic::Ordering;
        match &mut self.holder {
            Holder::Sqlite { flag, leading } => {
                if !*leading {
                    *leading = flag
                        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok();
                }
                Ok(*leading)
            }
            Holder::Postgres {
                pool,
                conn,
                leading,
            } => {
                if *leading {
                    let alive = match conn.as_mut() {
                        Some(c) => sqlx::Connection::ping(c).await.is_ok(),
                        None => false,
                    };
                    if alive {
                        return Ok(true);
                    }
                    // The connection ended, and the lock with it.
                    *leading = false;
                    *conn = None;
                }
                let kept = match conn.take() {
                    Some(c) => c,
                    // Detached: the lock's connection must not go back to the pool
                    // (another task would then hold the lock) nor take a pool slot.
                    None => pool.acquire().await?.detach(),
                };
                let c = conn.insert(kept);
                let tried: Result<(bool,), _> = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
                    .bind(self.key)
                    .fetch_one(c)
                    .await;
                match tried {
                    Ok((locked,)) => {
                        *leading = locked;
                        Ok(locked)
                    }
                    Err(e) => {
                        *conn = None; // a fresh connection next time
                        Err(e.into())
                    }
                }
            }
        }
    }
}

impl Candidacy {
    /// Gives the leadership up at once (dropping the candidacy does too, but on
    /// PostgreSQL only when the server notices the closed connection, a moment later).
    pub async fn resign(mut self) {
        if let Holder::Postgres { conn, leading, .. } = &mut self.holder
            && let Some(mut c) = conn.take()
        {
            if *leading {
                let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(self.key)
                    .execute(&mut c)
                    .await;
                *leading = false;
            }
            let _ = sqlx::Connection::close(c).await;
        }
    }
}

impl Drop for Candidacy {
    fn drop(&mut self) {
        // PostgreSQL: dropping the connection closes it, which releases the lock.
        if let Holder::Sqlite {
            flag,
            leading: true,
        } = &self.holder
        {
            flag.store(false, std::sync::atomic::Ordering::Release);
        }
    }
}

/// The advisory-lock key of a role: a stable 64-bit hash of its name (FNV-1a), so
/// every node and version agrees on it without a registry of numbers.
fn advisory_key(role: &str) -> i64 {
    let hash = role.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Hears announcements of other nodes on one PostgreSQL `LISTEN` channel: queued
/// jobs ([`JOBS_CHANNEL`]) or changed grants ([`GRANTS_CHANNEL`]).
pub struct Listener(sqlx::postgres::PgListener);

impl Listener {
    /// Waits for the next announcement and returns its payload. An error means the
    /// connection was lost; the caller falls back to polling and reconnects.
    pub async fn recv(&mut self) -> StoreResult<String> {
        Ok(self.0.recv().await?.payload().to_owned())
    }
}

impl Store {
    /// A listener for `channel`; `None` on SQLite, where one process is all there
    /// is and it tells itself in memory.
    pub async fn listener(&self, channel: &str) -> StoreResult<Option<Listener>> {
        let crate::db::Db::Postgres(pool) = &self.db else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(channel).await?;
        Ok(Some(Listener(listener)))
    }

    /// This node's candidacy for the leadership of `role`; nothing is asked until
    /// [`Candidacy::lead`].
    pub fn candidacy(&self, role: &str) -> Candidacy {
        let holder = match &self.db {
            crate::db::Db::Postgres(pool) => Holder::Postgres {
                pool: pool.clone(),
                conn: None,
                leading: false,
            },
            crate::db::Db::Sqlite { .. } => Holder::Sqlite {
                flag: self.sole_leader.clone(),
                leading: false,
            },
        };
        Candidacy {
            key: advisory_key(role),
            holder,
        }
    }

    /// Tells every node that grants changed (`NOTIFY` on [`GRANTS_CHANNEL`] with
    /// `node`); nothing on SQLite.
    pub async fn notify_grants_changed(&self, node: &str) -> StoreResult<()> {
        if self.db.is_sqlite() {
            return Ok(());
        }
        let mut c = self.db.writer().await?;
        execute!(c.conn(), "SELECT pg_notify($1, $2)", [GRANTS_CHANNEL, node]);
        Ok(())
    }
}
