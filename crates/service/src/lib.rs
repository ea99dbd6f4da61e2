//! Domain services: the operations behind every HTTP endpoint and CLI command. They load
//! facts from storage, ask the pure policy in `portcullis-domain`, and write back.
//! Nothing here knows about HTTP, and nothing outside this crate reaches the store:
//! every read and write goes through one of the services below, so cache invalidation
//! and the policy can never be skipped.
//!
//! One service per domain (authentication, registry tokens, users, teams, namespaces,
//! registries, health), all sharing one [`Context`].

#![cfg_attr(test, allow(clippy::unwrap_used))]

/// Declares a service struct holding the shared [`Context`].
macro_rules! service {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            ctx: std::sync::Arc<$crate::Context>,
        }

        impl $name {
            pub(crate) fn new(ctx: std::sync::Arc<$crate::Context>) -> Self {
                Self { ctx }
            }
        }
    };
}
pub(crate) use service;

mod activity;
pub mod auth;
pub mod authz_cache;
pub mod background;
pub mod clock;
pub mod gc;
pub mod health;
pub mod inventory;
pub mod listing;
pub mod namespaces;
pub mod passwords;
pub mod rate_limit;
pub mod registries;
pub mod repositories;
pub mod secrets;
pub mod sessions;
pub mod sync;
pub mod teams;
pub mod token;
pub mod users;
pub mod webhooks;

use portcullis_config::Config;
use portcullis_domain::policy::PolicyOptions;
use portcullis_domain::time::Clock;
use portcullis_registry::jwt::TokenSigner;
use portcullis_storage::Store;
use std::sync::Arc;

pub use auth::{AuthMethod, Authenticated, Authenticator};
pub use background::{BackgroundService, JobOutcome};
pub use gc::GcService;
pub use health::HealthService;
pub use inventory::InventoryService;
pub use namespaces::NamespaceService;
pub use portcullis_webhooks::Sealer;
pub use registries::RegistryService;
pub use repositories::RepositoryService;
pub use secrets::RandomSource;
pub use sessions::SessionService;
pub use sync::SyncService;
pub use teams::TeamService;
pub use token::TokenService;
pub use users::UserService;
pub use webhooks::{WebhookRuntime, WebhookService};

/// What every service shares: the store, the configuration, time, randomness and the
/// caches that writes must keep true.
pub struct Context {
    pub(crate) store: Store,
    pub(crate) config: Config,
    pub(crate) policy: PolicyOptions,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn RandomSource>,
    pub(crate) auth: Arc<Authenticator>,
    /// Authorization facts of the token path; see [`authz_cache`].
    pub(crate) authz: authz_cache::AuthzCache,
    /// Signs registry tokens: for clients, and for Portcullis's own registry calls.
    pub(crate) signer: Arc<TokenSigner>,
    /// Woken when a job is queued in this process (other nodes hear PostgreSQL NOTIFY).
    pub(crate) wakeups: Arc<tokio::sync::Notify>,
    /// One HTTP client (and connection pool) per registry.
    pub(crate) registry_clients: std::sync::Mutex<
        std::collections::HashMap<
            (String, bool),
            Arc<portcullis_registry::inventory_client::RegistryClient>,
        >,
    >,
    /// Opens webhook secrets and sends deliveries.
    pub(crate) webhooks: WebhookRuntime,
}

impl Context {
    /// Tells this process's workers that a job is waiting.
    pub(crate) fn wake_workers(&self) {
        self.wakeups.notify_waiters();
        self.wakeups.notify_one();
    }

    /// Called after every write that can change what a token grants.
    pub(crate) fn grants_changed(&self) {
        self.authz.invalidate();
    }
}

/// Every service, built once at start-up and shared by all handlers. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub auth: Arc<Authenticator>,
    pub tokens: TokenService,
    pub users: UserService,
    pub teams: TeamService,
    pub namespaces: NamespaceService,
    pub registries: RegistryService,
    pub health: HealthService,
    pub inventory: InventoryService,
    pub repositories: RepositoryService,
    pub background: BackgroundService,
    pub sync: SyncService,
    pub gc: GcService,
    pub webhooks: WebhookService,
    pub sessions: SessionService,
    context: Arc<Context>,
}

impl Services {
    pub fn new(
        store: Store,
        config: Config,
        clock: Arc<dyn Clock>,
        random: Arc<dyn RandomSource>,
        signer: TokenSigner,
        hasher: passwords::PasswordHasher,
        webhook_key: portcullis_webhooks::Sealer,
    ) -> Self {
        let auth = Arc::new(Authenticator::new(
            store.clone(),
            &config.security_policy,
            clock.clone(),
            random.as_ref(),
            hasher,
        ));
        let authz = authz_cache::AuthzCache::new(
            config.security_policy.authorization_cache_seconds,
            clock.clone(),
        );
        let context = Arc::new(Context {
            policy: config.policy_options(),
            webhooks: WebhookRuntime::new(webhook_key, &config),
            store,
            config,
            clock,
            random,
            auth: auth.clone(),
            authz,
            signer: Arc::new(signer),
            wakeups: Arc::new(tokio::sync::Notify::new()),
            registry_clients: std::sync::Mutex::new(std::collections::HashMap::new()),
        });
        Self {
            auth,
            tokens: TokenService::new(context.clone()),
            users: UserService::new(context.clone()),
            teams: TeamService::new(context.clone()),
            namespaces: NamespaceService::new(context.clone()),
            registries: RegistryService::new(context.clone()),
            health: HealthService::new(context.clone()),
            inventory: InventoryService::new(context.clone()),
            repositories: RepositoryService::new(context.clone()),
            background: BackgroundService::new(context.clone()),
            sync: SyncService::new(context.clone()),
            gc: GcService::new(context.clone()),
            webhooks: WebhookService::new(context.clone()),
            sessions: SessionService::new(context.clone()),
            context,
        }
    }

    /// The services' clock, for values a caller computes from now (a token's expiry).
    pub fn now(&self) -> portcullis_domain::time::Timestamp {
        self.context.clock.now()
    }

    /// The configuration the services run with.
    pub fn config(&self) -> &Config {
        &self.context.config
    }

    /// Notified whenever a job is queued by this process.
    pub fn wakeups(&self) -> Arc<tokio::sync::Notify> {
        self.context.wakeups.clone()
    }

    /// The store's PostgreSQL job listener (`None` on SQLite), for workers on other
    /// nodes to hear new jobs.
    pub async fn job_listener(
        &self,
    ) -> Result<Option<portcullis_storage::JobListener>, portcullis_domain::Error> {
        Ok(self.context.store.job_listener().await?)
    }

    /// The next job due for `worker`, leased until `lease_secs` from now.
    pub async fn claim_job(
        &self,
        worker: &str,
        lease_secs: i64,
    ) -> Result<Option<portcullis_domain::inventory::Job>, portcullis_domain::Error> {
        let now = self.context.clock.now();
        Ok(self
            .context
            .store
            .claim_job(worker, now, now.plus_secs(lease_secs))
            .await?)
    }

    /// Keeps a running job's lease; `false` when it is no longer this worker's.
    pub async fn extend_lease(
        &self,
        job: &portcullis_domain::inventory::Job,
        worker: &str,
        lease_secs: i64,
    ) -> Result<bool, portcullis_domain::Error> {
        let until = self.context.clock.now().plus_secs(lease_secs);
        Ok(self
            .context
            .store
            .extend_job_lease(job, worker, until)
            .await?)
    }

    /// Records how a job run ended: done, retried later with backoff, or parked.
    pub async fn finish_job(
        &self,
        job: &portcullis_domain::inventory::Job,
        worker: &str,
        outcome: &JobOutcome,
    ) -> Result<bool, portcullis_domain::Error> {
        let now = self.context.clock.now();
        let store = &self.context.store;
        let recorded = match outcome {
            JobOutcome::Done => store.complete_job(job, worker, now).await?,
            JobOutcome::Retry(error) => {
                let delay = portcullis_domain::inventory::retry_delay_secs(job.attempts);
                store
                    .fail_job(job, worker, error, Some(now.plus_secs(delay)), now)
                    .await?
            }
            JobOutcome::Fail(error) => store.fail_job(job, worker, error, None, now).await?,
        };
        Ok(recorded)
    }

    /// Closes the database connections (graceful shutdown; outage tests).
    pub async fn close(&self) {
        self.context.store.close().await;
    }
}
