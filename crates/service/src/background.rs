//! Background work: the job kinds, what runs each, the periodic schedule, and the admin
//! view of the queue. The loop that claims and runs jobs lives in `portcullis-worker`.

use crate::auth::Authenticated;
use crate::listing::{ListParams, Paged};
use portcullis_config::SyncStrategy;
use portcullis_domain::inventory::{Job, JobState, NewJob};
use portcullis_domain::model::Id;
use portcullis_domain::time::Timestamp;
use portcullis_domain::{Error, Result};
use portcullis_storage::{JobFilter, StoreError};
use serde::{Deserialize, Serialize};

pub const JOB_SORT: &[&str] = &["id", "kind", "state", "run_at", "updated_at"];

/// Job kinds, as stored in `jobs.kind`.
pub mod kinds {
    pub const PROCESS_EVENTS: &str = "process_events";
    pub const SYNC: &str = "sync_registry";
    pub const GARBAGE_COLLECT: &str = "garbage_collect";
    pub const CLEANUP: &str = "cleanup";
    pub const DELIVER_WEBHOOK: &str = "deliver_webhook";
    pub const LDAP_GROUP_SYNC: &str = "ldap_group_sync";
    pub const PASSWORD_RESET_REQUEST: &str = "password_reset_request";
    pub const SEND_MAIL: &str = "send_mail";
    pub const ALL: [&str; 8] = [
        PROCESS_EVENTS,
        SYNC,
        GARBAGE_COLLECT,
        CLEANUP,
        DELIVER_WEBHOOK,
        LDAP_GROUP_SYNC,
        PASSWORD_RESET_REQUEST,
        SEND_MAIL,
    ];
}

/// Attempts of most jobs before they are parked as failed.
const DEFAULT_ATTEMPTS: i64 = 10;
/// Processed events and finished jobs are kept this long.
const RETENTION_DAYS: i64 = 30;
const CLEANUP_PERIOD_MS: i64 = 3_600_000;
const GC_PERIOD_MS: i64 = 60_000;
/// Portus's period of the LDAP group sync.
const LDAP_GROUP_SYNC_PERIOD_MS: i64 = 10_000;

/// How a job run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Done,
    /// Failed for now (registry or database unreachable): retried with backoff.
    Retry(String),
    /// Cannot succeed (bad payload): parked as failed at once.
    Fail(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncPayload {
    pub registry_id: Id,
    /// `None`: the configured strategy.
    pub delete: Option<bool>,
    /// `initial`: only when the inventory is empty.
    #[serde(default)]
    pub only_if_empty: bool,
}

/// The job that works off pending events (a singleton: one queued at most).
pub(crate) fn wake_job(now: Timestamp) -> NewJob {
    NewJob {
        kind: kinds::PROCESS_EVENTS.into(),
        payload: "{}".into(),
        singleton: Some(kinds::PROCESS_EVENTS.into()),
        max_attempts: DEFAULT_ATTEMPTS,
        run_at: now,
    }
}

pub(crate) fn sync_job(payload: &SyncPayload, now: Timestamp) -> NewJob {
    NewJob {
        kind: kinds::SYNC.into(),
        payload: serde_json::to_string(payload).unwrap_or_else(|_| "{}".into()),
        singleton: Some(format!("{}:{}", kinds::SYNC, payload.registry_id)),
        max_attempts: 3,
        run_at: now,
    }
}

fn singleton_job(kind: &str, now: Timestamp) -> NewJob {
    NewJob {
        kind: kind.into(),
        payload: "{}".into(),
        singleton: Some(kind.into()),
        max_attempts: 3,
        run_at: now,
    }
}

crate::service! {
    /// The job queue: what each kind runs, the schedule, and the admin API.
    BackgroundService
}

impl BackgroundService {
    /// Runs one claimed job to its outcome.
    pub async fn run(&self, services: &crate::Services, job: &Job) -> JobOutcome {
        match job.kind.as_str() {
            kinds::PROCESS_EVENTS => {
                if !self.ctx.config.background.registry.enabled {
                    return JobOutcome::Retry(
                        "background.registry.enabled is false: events wait".into(),
                    );
                }
                services.inventory.process_pending().await
            }
            kinds::SYNC => match serde_json::from_str::<SyncPayload>(&job.payload) {
                Ok(p) => services.sync.run_job(&p).await,
                Err(e) => JobOutcome::Fail(format!("bad payload: {e}")),
            },
            kinds::GARBAGE_COLLECT => services.gc.run_job().await,
            kinds::CLEANUP => self.cleanup().await,
            kinds::LDAP_GROUP_SYNC => services.group_sync.run_job().await,
            kinds::PASSWORD_RESET_REQUEST => {
                services
                    .mail
                    .run_reset_request(services, &job.payload)
                    .await
            }
            kinds::SEND_MAIL => services.mail.run_send(&job.payload).await,
            kinds::DELIVER_WEBHOOK => {
                match serde_json::from_str::<crate::webhooks::DeliveryPayload>(&job.payload) {
                    Ok(p) => services.webhooks.run_delivery(&p).await,
                    Err(e) => JobOutcome::Fail(format!("bad payload: {e}")),
                }
            }
            other => JobOutcome::Fail(format!("unknown job kind {other:?}")),
        }
    }

    /// Queues the periodic tasks that are due. With several nodes each period runs on
    /// one of them (the schedule row is claimed by one guarded update). Returns the
    /// names queued.
    pub async fn schedule_due(&self) -> Result<Vec<&'static str>> {
        let now = self.ctx.clock.now();
        let mut queued = Vec::new();
        let store = &self.ctx.store;
        let cfg = &self.ctx.config;
        // The safety net of event processing. A new event queues the `process_events`
        // job in its own transaction, but when that job is still queued the insert is a
        // no-op, and on PostgreSQL a worker may claim the queued job and read the
        // pending events just before the new event's transaction commits: the event
        // would then wait with no job at all. Pending events always have a job queued
        // within a tick (a singleton: nothing is queued when one is).
        if cfg.background.registry.enabled
            && !store.pending_events(1).await?.is_empty()
            && store.enqueue_job(&wake_job(now), now).await?.is_some()
        {
            queued.push(kinds::PROCESS_EVENTS);
        }
        if store
            .claim_schedule(
                kinds::CLEANUP,
                CLEANUP_PERIOD_MS,
                &singleton_job(kinds::CLEANUP, now),
                now,
            )
            .await?
        {
            queued.push(kinds::CLEANUP);
        }
        if cfg.delete.garbage_collector.enabled
            && store
                .claim_schedule(
                    kinds::GARBAGE_COLLECT,
                    GC_PERIOD_MS,
                    &singleton_job(kinds::GARBAGE_COLLECT, now),
                    now,
                )
                .await?
        {
            queued.push(kinds::GARBAGE_COLLECT);
        }
        if crate::group_sync::enabled(&self.ctx)
            && store
                .claim_schedule(
                    kinds::LDAP_GROUP_SYNC,
                    LDAP_GROUP_SYNC_PERIOD_MS,
                    &singleton_job(kinds::LDAP_GROUP_SYNC, now),
                    now,
                )
                .await?
        {
            queued.push(kinds::LDAP_GROUP_SYNC);
        }
        let sync = &cfg.background.sync;
        if sync.enabled && sync.strategy.repeats() {
            for registry in store.list_registries().await? {
                let payload = SyncPayload {
                    registry_id: registry.id,
                    delete: None,
                    only_if_empty: false,
                };
                let name = format!("{}:{}", kinds::SYNC, registry.id);
                if store
                    .claim_schedule(
                        &name,
                        sync.period_seconds.saturating_mul(1000),
                        &sync_job(&payload, now),
                        now,
                    )
                    .await?
                {
                    queued.push(kinds::SYNC);
                }
            }
        }
        if !queued.is_empty() {
            self.ctx.wake_workers();
        }
        Ok(queued)
    }

    /// What a worker does once at start: the one-off sync strategies.
    pub async fn on_start(&self) -> Result<()> {
        let sync = &self.ctx.config.background.sync;
        if !sync.enabled || sync.strategy.repeats() {
            return Ok(());
        }
        let now = self.ctx.clock.now();
        for registry in self.ctx.store.list_registries().await? {
            let payload = SyncPayload {
                registry_id: registry.id,
                delete: Some(true),
                only_if_empty: sync.strategy == SyncStrategy::Initial,
            };
            self.ctx
                .store
                .enqueue_job(&sync_job(&payload, now), now)
                .await?;
        }
        self.ctx.wake_workers();
        Ok(())
    }

    async fn cleanup(&self) -> JobOutcome {
        let now = self.ctx.clock.now();
        let before = now.plus_secs(-RETENTION_DAYS * 86_400);
        let store = &self.ctx.store;
        let pruned = async {
            let jobs = store.prune_jobs(before).await?;
            let events = store.prune_events(before).await?;
            let deliveries = store
                .prune_deliveries(self.ctx.config.webhooks.history)
                .await?;
            let idle_secs = self.ctx.config.security_policy.session_idle_minutes * 60;
            let sessions = store.prune_sessions(now, now.plus_secs(-idle_secs)).await?;
            Ok::<_, StoreError>((jobs, events, deliveries, sessions))
        };
        match pruned.await {
            Ok((jobs, events, deliveries, sessions)) => {
                tracing::debug!(jobs, events, deliveries, sessions, "cleanup");
                JobOutcome::Done
            }
            Err(e) => JobOutcome::Retry(e.to_string()),
        }
    }

    pub async fn list_jobs(
        &self,
        actor: &Authenticated,
        filter: &JobFilter,
        params: &ListParams,
    ) -> Result<Paged<Job>> {
        actor.require_admin()?;
        let page = self
            .ctx
            .store
            .list_jobs(filter, params.to_page_request(JOB_SORT)?)
            .await?;
        Ok(params.paged(page.items, page.total))
    }

    pub async fn show_job(&self, actor: &Authenticated, id: Id) -> Result<Job> {
        actor.require_admin()?;
        self.ctx
            .store
            .job_by_id(id)
            .await?
            .ok_or(Error::NotFound("Job"))
    }

    /// Queues a parked (failed or cancelled) job again with fresh attempts.
    pub async fn retry_job(&self, actor: &Authenticated, id: Id) -> Result<Job> {
        actor.require_admin_to_change()?;
        let job = self.show_job(actor, id).await?;
        if !matches!(job.state, JobState::Failed | JobState::Cancelled) {
            return Err(Error::Unprocessable(format!(
                "only failed or cancelled jobs can be retried; this one is {}",
                job.state.as_str()
            )));
        }
        let now = self.ctx.clock.now();
        let job = self
            .ctx
            .store
            .retry_job(id, now)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    Error::Unprocessable("the same job is already queued".into())
                }
                StoreError::NotFound => {
                    Error::Unprocessable("the job changed state meanwhile; reload it".into())
                }
                other => other.into(),
            })?;
        self.ctx.wake_workers();
        Ok(job)
    }

    pub async fn cancel_job(&self, actor: &Authenticated, id: Id) -> Result<Job> {
        actor.require_admin_to_change()?;
        let job = self.show_job(actor, id).await?;
        if !matches!(job.state, JobState::Queued | JobState::Failed) {
            return Err(Error::Unprocessable(format!(
                "only queued or failed jobs can be cancelled; this one is {}",
                job.state.as_str()
            )));
        }
        self.ctx
            .store
            .cancel_job(id, self.ctx.clock.now())
            .await
            .map_err(|e| match e {
                StoreError::NotFound => {
                    Error::Unprocessable("the job changed state meanwhile; reload it".into())
                }
                other => other.into(),
            })
    }
}
