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
pub mod exchange;
pub mod external_login;
pub mod gc;
pub mod group_sync;
pub mod health;
pub mod inventory;
pub mod ldap;
pub mod listing;
pub mod mail;
pub mod metrics;
pub mod namespaces;
pub mod oauth;
pub mod oidc;
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
pub use exchange::TokenExchangeService;
pub use external_login::ExternalLoginService;
pub use gc::GcService;
pub use group_sync::GroupSyncService;
pub use health::HealthService;
pub use inventory::InventoryService;
pub use mail::MailService;
pub use namespaces::NamespaceService;
pub use portcullis_storage::Candidacy;
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

/// What Portcullis connects to besides the database: registries (trusting these roots
/// too), with `ldap.enabled` the LDAP directory, and the mail server (`email.*`; `None`:
/// mail waits in the queue).
#[derive(Clone, Default)]
pub struct Outbound {
    pub registry_roots: portcullis_registry::tls::TrustedRoots,
    pub directory: Option<Arc<ldap::Directory>>,
    pub mailer: Option<Arc<mail::Mailer>>,
    /// The HTTP client for token exchange issuers ([`exchange::http_client`]); `None`:
    /// reqwest's default client.
    pub token_exchange_http: Option<reqwest::Client>,
}

/// The role whose leader queues the periodic tasks (an advisory lock on PostgreSQL).
const SCHEDULER_ROLE: &str = "portcullis:scheduler";

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
    /// `registry.certificates_dir`, trusted for TLS to registries.
    pub(crate) registry_roots: portcullis_registry::tls::TrustedRoots,
    /// Random name of this process in grant announcements, so it can tell its own.
    pub(crate) node: String,
    /// Sends the mail the worker's jobs hold.
    pub(crate) mailer: Option<Arc<mail::Mailer>>,
    /// "Forgot your password?" requests per client address.
    pub(crate) reset_requests: rate_limit::RateLimiter,
    /// `oauth.openid_connect`'s client, discovered on first use.
    pub(crate) oidc_client: tokio::sync::OnceCell<oidc::OidcClient>,
    /// `oauth.google_oauth2`'s client (Google is an OpenID Provider), discovered on
    /// first use.
    pub(crate) google_client: tokio::sync::OnceCell<oidc::OidcClient>,
    /// The HTTP client of the plain OAuth providers (GitHub, GitLab, Bitbucket).
    pub(crate) oauth_http: tokio::sync::OnceCell<reqwest::Client>,
}

impl Context {
    /// Tells this process's workers that a job is waiting.
    pub(crate) fn wake_workers(&self) {
        self.wakeups.notify_waiters();
        self.wakeups.notify_one();
    }

    /// Called after every write that can change what a token grants (after it is
    /// committed): clears this node's cache now and, on PostgreSQL, tells the other
    /// nodes to clear theirs ([`Services::listen_for_grant_changes`]). Should the
    /// announcement be lost, their cache entries still expire within
    /// `security_policy.authorization_cache_seconds`.
    pub(crate) fn grants_changed(&self) {
        self.authz.invalidate();
        metrics::grant_invalidation("local");
        if self.store.backend() == "sqlite" {
            return;
        }
        let (store, node) = (self.store.clone(), self.node.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store.notify_grants_changed(&node).await {
                    tracing::warn!(error = %e, "other nodes not told of a grant change; their caches expire on their own");
                }
            });
        }
    }
}

/// A name for this `Services` unique among the nodes of one database: host, process,
/// a counter (several in one test process) and the start time. Not a secret, and not
/// drawn from the injected randomness, so tests' seeded values stay where they were.
fn node_name(started: portcullis_domain::time::Timestamp) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let started = started.0;
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}:{}:{n}:{started}", host.trim(), std::process::id())
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
    pub group_sync: GroupSyncService,
    pub webhooks: WebhookService,
    pub sessions: SessionService,
    pub mail: MailService,
    pub external_login: ExternalLoginService,
    pub exchange: TokenExchangeService,
    context: Arc<Context>,
}

impl Services {
    /// The composition root: every dependency the services share comes in here.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        config: Config,
        clock: Arc<dyn Clock>,
        random: Arc<dyn RandomSource>,
        signer: TokenSigner,
        hasher: passwords::PasswordHasher,
        webhook_key: portcullis_webhooks::Sealer,
        outbound: Outbound,
    ) -> Self {
        let Outbound {
            registry_roots,
            directory,
            mailer,
            token_exchange_http,
        } = outbound;
        // Off: no recorder, so every metric update is the `metrics` crate's no-op.
        if config.metrics.enabled {
            metrics::install();
        }
        let auth = Arc::new(Authenticator::new(
            store.clone(),
            &config.security_policy,
            clock.clone(),
            random.as_ref(),
            hasher,
            directory,
        ));
        let authz = authz_cache::AuthzCache::new(
            config.security_policy.authorization_cache_seconds,
            clock.clone(),
        );
        let node = node_name(clock.now());
        let reset_requests =
            rate_limit::RateLimiter::new(mail::RESET_REQUESTS_PER_MINUTE, clock.clone());
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
            registry_roots,
            node,
            mailer,
            reset_requests,
            oidc_client: tokio::sync::OnceCell::new(),
            google_client: tokio::sync::OnceCell::new(),
            oauth_http: tokio::sync::OnceCell::new(),
        });
        let tokens = TokenService::new(context.clone());
        Self {
            auth,
            exchange: TokenExchangeService::new(
                context.clone(),
                tokens.clone(),
                token_exchange_http.unwrap_or_default(),
            ),
            tokens,
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
            group_sync: GroupSyncService::new(context.clone()),
            webhooks: WebhookService::new(context.clone()),
            sessions: SessionService::new(context.clone()),
            mail: MailService::new(context.clone()),
            external_login: ExternalLoginService::new(context.clone()),
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
    ) -> Result<Option<portcullis_storage::Listener>, portcullis_domain::Error> {
        Ok(self
            .context
            .store
            .listener(portcullis_storage::JOBS_CHANNEL)
            .await?)
    }

    /// This node's candidacy for leading the periodic scheduler (see [`Candidacy`]).
    pub fn scheduler_candidacy(&self) -> Candidacy {
        self.context.store.candidacy(SCHEDULER_ROLE)
    }

    /// On PostgreSQL, clears this node's authorization-fact cache whenever another
    /// node announces a grant change, until the process ends; reconnects after
    /// `retry` when the connection drops (and clears the cache then, since
    /// announcements may have been missed). Returns at once on SQLite.
    pub async fn listen_for_grant_changes(&self, retry: std::time::Duration) {
        let ctx = &self.context;
        loop {
            match ctx.store.listener(portcullis_storage::GRANTS_CHANNEL).await {
                Ok(None) => return,
                Ok(Some(mut listener)) => {
                    ctx.authz.invalidate();
                    while let Ok(node) = listener.recv().await {
                        if node != ctx.node {
                            ctx.authz.invalidate();
                            metrics::grant_invalidation("remote");
                        }
                    }
                    tracing::warn!("grant change listener disconnected; reconnecting");
                }
                Err(e) => tracing::warn!(error = %e, "grant change listener unavailable"),
            }
            ctx.authz.invalidate();
            tokio::time::sleep(retry).await;
        }
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
