//! The background worker: claims jobs from the database queue and runs them, keeps
//! their leases alive, queues periodic tasks when they are due, and stops gracefully.
//!
//! What each job does lives in `portcullis-service` (`BackgroundService::run`); this
//! crate is only the runtime around it. Wake-ups: a job queued in this process
//! notifies at once (in memory); on PostgreSQL a `LISTEN` connection hears jobs queued
//! by other nodes; a slow poll (and the lease takeover it performs) covers anything
//! missed, for instance while the database was unreachable.
//!
//! Tests do not run the loop: [`Worker::drain`] runs every due job to completion,
//! deterministically, and returns how many ran.

use portcullis_domain::inventory::Job;
use portcullis_service::{JobOutcome, Services};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// Seconds a claimed job is leased for unless `background.lease_seconds` says otherwise;
/// a heartbeat renews it at a third of that. A worker that dies leaves the lease to
/// expire and another worker takes the job over.
pub const LEASE_SECS: i64 = 30;
/// How often the queue is polled when nothing wakes the worker (a safety net).
const POLL: Duration = Duration::from_secs(5);
/// How often the periodic schedule is checked.
const SCHEDULE_TICK: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Worker {
    services: Services,
    /// Names this worker in `jobs.worker` (host and process id by default).
    id: Arc<str>,
    concurrency: usize,
    /// `background.lease_seconds`.
    lease_secs: i64,
}

impl Worker {
    /// A worker leasing jobs for `background.lease_seconds` of the services' config.
    pub fn new(services: Services, id: impl Into<Arc<str>>, concurrency: usize) -> Self {
        let lease_secs = services.config().background.lease_seconds;
        Self {
            services,
            id: id.into(),
            concurrency: concurrency.max(1),
            lease_secs: if lease_secs > 0 {
                lease_secs
            } else {
                LEASE_SECS
            },
        }
    }

    /// A worker id for this process: `<hostname>:<pid>`.
    pub fn default_id() -> String {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned());
        format!("{host}:{}", std::process::id())
    }

    /// Claims and runs one due job. `None` when nothing is due.
    pub async fn run_one(&self) -> Result<Option<(Job, JobOutcome)>, portcullis_domain::Error> {
        let Some(job) = self.services.claim_job(&self.id, self.lease_secs).await? else {
            return Ok(None);
        };
        let outcome = self.execute(&job).await;
        Ok(Some((job, outcome)))
    }

    /// Runs every job that is due now, one after the other, until none is left (jobs
    /// queued by jobs included; retries wait for their backoff and are not due).
    /// Returns the jobs run, in order. For tests and one-shot CLI runs.
    pub async fn drain(&self) -> Result<Vec<(Job, JobOutcome)>, portcullis_domain::Error> {
        let mut ran = Vec::new();
        while let Some(done) = self.run_one().await? {
            ran.push(done);
        }
        Ok(ran)
    }

    /// Runs `job` with a lease heartbeat, then records the outcome.
    async fn execute(&self, job: &Job) -> JobOutcome {
        let heartbeat = {
            let services = self.services.clone();
            let job = job.clone();
            let id = self.id.clone();
            let lease_secs = self.lease_secs;
            // A third of the lease, so two renewals may fail before it lapses.
            let period = Duration::from_millis((lease_secs.max(1) as u64).saturating_mul(1000) / 3);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(period).await;
                    match services.extend_lease(&job, &id, lease_secs).await {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => tracing::warn!(job = job.id, error = %e, "lease not renewed"),
                    }
                }
            })
        };
        let started = std::time::Instant::now();
        let outcome = self.services.background.run(&self.services, job).await;
        heartbeat.abort();
        let label = match &outcome {
            JobOutcome::Done => "done",
            JobOutcome::Retry(_) => "retry",
            JobOutcome::Fail(_) => "failed",
        };
        portcullis_service::metrics::job_run(&job.kind, label, started.elapsed());
        match &outcome {
            JobOutcome::Done => tracing::debug!(job = job.id, kind = %job.kind, "job done"),
            JobOutcome::Retry(e) | JobOutcome::Fail(e) => {
                tracing::warn!(job = job.id, kind = %job.kind, attempt = job.attempts, error = %e, "job failed")
            }
        }
        match self.services.finish_job(job, &self.id, &outcome).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                job = job.id,
                "job result not recorded: its lease expired and another worker took it over"
            ),
            Err(e) => tracing::warn!(job = job.id, error = %e, "job result not recorded"),
        }
        outcome
    }

    /// Runs until `shutdown` turns true, then stops claiming, waits for running jobs
    /// to finish (drain) and returns.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if let Err(e) = self.services.background.on_start().await {
            tracing::warn!(error = %e, "start-up sync not queued");
        }
        let wakeups = self.services.wakeups();
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let mut running = JoinSet::new();
        let listener = self.spawn_listener(wakeups.clone());
        let scheduler = self.spawn_scheduler(shutdown.clone());
        tracing::info!(worker = %self.id, concurrency = self.concurrency, "worker started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Fill the free slots with due jobs.
            let mut claimed_any = false;
            while let Ok(permit) = slots.clone().try_acquire_owned() {
                match self.services.claim_job(&self.id, self.lease_secs).await {
                    Ok(Some(job)) => {
                        claimed_any = true;
                        let worker = self.clone();
                        running.spawn(async move {
                            let _permit = permit;
                            worker.execute(&job).await;
                        });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot claim jobs");
                        break;
                    }
                }
            }
            while running.try_join_next().is_some() {}
            if claimed_any && slots.available_permits() > 0 {
                continue;
            }
            tokio::select! {
                _ = wakeups.notified() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!(
            running = running.len(),
            "worker stopping: finishing running jobs"
        );
        while running.join_next().await.is_some() {}
        listener.abort();
        // The scheduler resigns its leadership as it ends; a database that does not
        // answer must not hold the shutdown up.
        let abort = scheduler.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), scheduler)
            .await
            .is_err()
        {
            abort.abort();
        }
        tracing::info!("worker stopped");
    }

    fn spawn_listener(&self, wakeups: Arc<tokio::sync::Notify>) -> tokio::task::JoinHandle<()> {
        let services = self.services.clone();
        tokio::spawn(async move {
            loop {
                match services.job_listener().await {
                    Ok(Some(mut listener)) => {
                        while listener.recv().await.is_ok() {
                            wakeups.notify_one();
                        }
                    }
                    Ok(None) => return, // SQLite: in-process wake-ups only
                    Err(e) => tracing::debug!(error = %e, "job listener unavailable"),
                }
                // Lost the connection: the poll covers the gap; try again shortly.
                tokio::time::sleep(POLL).await;
            }
        })
    }

    /// The periodic scheduler. One worker of all nodes leads it (an advisory lock on
    /// PostgreSQL, so the others neither query the schedule every tick nor race for
    /// it); the others ask for the leadership every tick, on one connection each, and
    /// take over within a tick of the leader's connection ending. The per-period claim
    /// of each task (`claim_schedule`) stays the guarantee that a task is queued once
    /// per period, even in the moment two nodes both believe they lead.
    fn spawn_scheduler(&self, mut shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let services = self.services.clone();
        let id = self.id.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SCHEDULE_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut candidacy = services.scheduler_candidacy();
            let mut was = None; // Some(leading) once known, so each change is said once
            portcullis_service::metrics::scheduler_leader(false);
            while !*shutdown.borrow() {
                tokio::select! {
                    _ = tick.tick() => {}
                    changed = shutdown.changed() => {
                        if changed.is_err() {
                            break; // the sender is gone: the process is ending
                        }
                        continue;
                    }
                }
                let leading = candidacy.lead().await.unwrap_or_else(|e| {
                    tracing::debug!(error = %e, "scheduler leadership not checked");
                    false
                });
                if was != Some(leading) {
                    Self::leadership_changed(&id, was, leading);
                    was = Some(leading);
                }
                if leading && let Err(e) = services.background.schedule_due().await {
                    tracing::debug!(error = %e, "schedule not checked");
                }
            }
            // Stopping: hand the leadership on at once rather than when the server
            // notices the closed connection.
            candidacy.resign().await;
        })
    }

    fn leadership_changed(id: &str, was: Option<bool>, leading: bool) {
        portcullis_service::metrics::scheduler_leader(leading);
        match (was, leading) {
            (_, true) => tracing::info!(worker = %id, "leading the periodic scheduler"),
            (Some(true), false) => tracing::warn!(
                worker = %id,
                "lost the scheduler leadership (database connection ended)"
            ),
            (_, false) => {
                tracing::info!(worker = %id, "another worker leads the periodic scheduler")
            }
        }
    }
}
