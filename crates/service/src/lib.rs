//! Domain services: the operations behind every HTTP endpoint and CLI command. They load
//! facts from storage, ask the pure policy in `portcullis-domain`, and write back.
//! Nothing here knows about HTTP.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod auth;
pub mod authz_cache;
pub mod clock;
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
pub use secrets::RandomSource;

/// Everything a request needs, shared by all handlers. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub config: Arc<Config>,
    pub policy: PolicyOptions,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
    pub signer: Arc<TokenSigner>,
    pub auth: Arc<Authenticator>,
    /// Authorization facts of the token path; see [`authz_cache`].
    pub authz: Arc<authz_cache::AuthzCache>,
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
        let config = Arc::new(config);
        let auth = Authenticator::new(
            store.clone(),
            &config.security_policy,
            clock.clone(),
            random.as_ref(),
            hasher,
        );
        let authz = authz_cache::AuthzCache::new(
            config.security_policy.authorization_cache_seconds,
            clock.clone(),
        );
        Self {
            authz: Arc::new(authz),
            policy: config.policy_options(),
            store,
            config,
            clock,
            random,
            signer: Arc::new(signer),
            auth: Arc::new(auth),
        }
    }
}

impl Services {
    /// Called after every write that can change what a token grants.
    pub(crate) fn grants_changed(&self) {
        self.authz.invalidate();
    }
}
