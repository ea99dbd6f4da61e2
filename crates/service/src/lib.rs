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

pub mod auth;
pub mod authz_cache;
pub mod clock;
pub mod health;
pub mod listing;
pub mod namespaces;
pub mod passwords;
pub mod rate_limit;
pub mod registries;
pub mod secrets;
pub mod teams;
pub mod token;
pub mod users;

use portcullis_config::Config;
use portcullis_domain::policy::PolicyOptions;
use portcullis_domain::time::Clock;
use portcullis_registry::jwt::TokenSigner;
use portcullis_storage::Store;
use std::sync::Arc;

pub use auth::{AuthMethod, Authenticated, Authenticator};
pub use health::HealthService;
pub use namespaces::NamespaceService;
pub use registries::RegistryService;
pub use secrets::RandomSource;
pub use teams::TeamService;
pub use token::TokenService;
pub use users::UserService;

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
}

impl Context {
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
            store,
            config,
            clock,
            random,
            auth: auth.clone(),
            authz,
        });
        Self {
            auth,
            tokens: TokenService::new(context.clone(), signer),
            users: UserService::new(context.clone()),
            teams: TeamService::new(context.clone()),
            namespaces: NamespaceService::new(context.clone()),
            registries: RegistryService::new(context.clone()),
            health: HealthService::new(context.clone()),
            context,
        }
    }

    /// The configuration the services run with.
    pub fn config(&self) -> &Config {
        &self.context.config
    }

    /// Closes the database connections (graceful shutdown; outage tests).
    pub async fn close(&self) {
        self.context.store.close().await;
    }
}
