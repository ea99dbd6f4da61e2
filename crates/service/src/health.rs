//! Health of the database, of every registry and of the LDAP directory
//! (`/api/v1/health`).
//!
//! Probing a registry is an outbound HTTP request, and the endpoint is public, so
//! probes are cached for a few seconds and run one at a time: a flood of health checks
//! costs the registries one request per registry every [`PROBE_CACHE_SECS`].

use crate::Context;
use portcullis_domain::model::Registry;
use portcullis_domain::time::Timestamp;
use portcullis_storage::MigrationState;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How long one probe answers every health request.
pub const PROBE_CACHE_SECS: i64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseHealth {
    UpToDate,
    /// Some migrations of this binary have not been applied yet.
    Pending,
    Uninitialized,
    Unreachable,
}

#[derive(Debug, Clone)]
pub struct RegistryHealth {
    pub registry: Registry,
    /// The reachability error, for admins only.
    pub status: Result<(), String>,
}

#[derive(Debug, Clone)]
pub struct HealthReport {
    pub database: DatabaseHealth,
    /// `None` when the registries could not be listed.
    pub registries: Option<Vec<RegistryHealth>>,
    /// With `ldap.enabled`: whether the directory took the search bind (the error for
    /// admins only).
    pub ldap: Option<Result<(), String>>,
}

impl HealthReport {
    pub fn registries_reachable(&self) -> bool {
        self.registries
            .as_ref()
            .is_some_and(|r| !r.is_empty() && r.iter().all(|h| h.status.is_ok()))
    }

    pub fn healthy(&self) -> bool {
        self.database == DatabaseHealth::UpToDate
            && self.registries_reachable()
            && self.ldap.as_ref().is_none_or(Result::is_ok)
    }
}

/// The last report and when it was probed.
type LastProbe = Option<(Timestamp, Arc<HealthReport>)>;

#[derive(Clone)]
pub struct HealthService {
    ctx: Arc<Context>,
    last: Arc<Mutex<LastProbe>>,
}

impl HealthService {
    pub(crate) fn new(ctx: Arc<Context>) -> Self {
        Self {
            ctx,
            last: Arc::new(Mutex::new(None)),
        }
    }

    /// The latest report, probed anew when the cached one is older than
    /// [`PROBE_CACHE_SECS`]. Concurrent callers wait for one probe.
    pub async fn report(&self) -> Arc<HealthReport> {
        let mut last = self.last.lock().await;
        let now = self.ctx.clock.now();
        if let Some((at, report)) = last.as_ref()
            && now < at.plus_secs(PROBE_CACHE_SECS)
        {
            return report.clone();
        }
        let report = Arc::new(self.probe().await);
        *last = Some((now, report.clone()));
        report
    }

    /// The Prometheus text of every metric, with the gauges of shared state (queue
    /// depth, database connections) read now. `None` when this process's metrics
    /// recorder could not be installed.
    pub async fn metrics(&self) -> Option<String> {
        let handle = crate::metrics::install()?;
        let queued = match self.ctx.store.queued_jobs_by_kind().await {
            Ok(rows) => Some(rows),
            Err(e) => {
                // The rest still renders; the queue gauges keep their last values.
                tracing::warn!(error = %e, "metrics: cannot count queued jobs");
                None
            }
        };
        if let Some(rows) = queued {
            for kind in crate::background::kinds::ALL {
                let n = rows.iter().find(|(k, _)| k == kind).map_or(0, |(_, n)| *n);
                crate::metrics::queue_depth(kind, n);
            }
        }
        let (in_use, idle) = self.ctx.store.connections();
        crate::metrics::db_connections(in_use, idle);
        Some(handle.render())
    }

    /// The database alone, asked now (readiness probes: one cheap query, no registry).
    pub async fn database(&self) -> DatabaseHealth {
        match self.ctx.store.migration_state().await {
            Ok(MigrationState::UpToDate) => DatabaseHealth::UpToDate,
            Ok(MigrationState::Pending) => DatabaseHealth::Pending,
            Ok(MigrationState::Uninitialized) => DatabaseHealth::Uninitialized,
            Err(e) => {
                tracing::warn!(error = %e, "health: database unreachable");
                DatabaseHealth::Unreachable
            }
        }
    }

    async fn probe(&self) -> HealthReport {
        let database = self.database().await;
        let timeout = Duration::from_secs(self.ctx.config.registry.timeout.value.unsigned_abs());
        let registries = match self.ctx.store.list_registries().await {
            Ok(list) => {
                let mut out = Vec::with_capacity(list.len());
                for registry in list {
                    let status = portcullis_registry::client::check_reachable(
                        &registry.hostname,
                        registry.use_ssl,
                        timeout,
                        &self.ctx.registry_roots,
                    )
                    .await
                    .map_err(|e| e.to_string());
                    out.push(RegistryHealth { registry, status });
                }
                Some(out)
            }
            Err(e) => {
                tracing::warn!(error = %e, "health: cannot list registries");
                None
            }
        };
        let ldap = match self.ctx.auth.directory() {
            Some(directory) => Some(directory.check().await.map_err(|e| e.to_string())),
            None => None,
        };
        HealthReport {
            database,
            registries,
            ldap,
        }
    }
}
