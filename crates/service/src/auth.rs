//! Authentication: who is calling, proven by a password, an application token or a
//! refresh token.
//!
//! Docker and friends send the password with every token request, so verifying it must
//! be cheap after the first time. A successful argon2/bcrypt check is remembered in an
//! in-memory cache keyed by HMAC(process key, user id ‖ credential version ‖ secret):
//! the secret itself is never stored, and bumping the user's credential version
//! (password change, disable, lockout) makes every old entry unreachable on every node,
//! because each request re-reads the user row anyway.
//!
//! The lockout guards passwords only: application and refresh tokens carry 256 random
//! bits and cannot be guessed, so locking them too would only let anyone who knows a
//! username cut that user's CI off. Every refused password costs the same work (one
//! hash verification, one rate-limit token), whatever the reason, so neither timing nor
//! the rate limiter tells which accounts exist.
//!
//! The credential verifiers: for passwords an ordered chain of [`PasswordVerifier`]s,
//! in Portus's order: with `ldap.enabled` the LDAP directory
//! ([`crate::ldap::Directory`]) first (a user it verifies is created on the first
//! sign-in, with a personal namespace), then the local hash of a user who has one
//! (accounts made before LDAP was turned on; a dummy hash otherwise, for the equal
//! cost). [`Authenticator::password`] wraps the whole chain once: the
//! verified-credential cache, the rate limit, the lockout and the equal cost of
//! refusals, so a verifier added to the chain gets them all. Bots never go to the
//! directory. A directory that cannot answer is an outage (503) for whoever it would
//! have decided, never a wrong password and never a lockout count; cached users keep
//! working. Application and refresh tokens are verifiers of their own
//! ([`Authenticator::application_token`], [`Authenticator::refresh_token`]), one
//! indexed lookup of a 256-bit secret's hash each, needing none of the password
//! wrappers. Identity providers (`external_login`) and the token exchange
//! (`exchange`) prove who someone is elsewhere and end in the same [`Authenticated`].

use crate::ldap::{Directory, DirectoryError, DirectoryUser, Verdict};
use crate::passwords::{PasswordHasher, is_bcrypt};
use crate::rate_limit::RateLimiter;
use crate::secrets::{APPLICATION_TOKEN_PREFIX, RandomSource, token_hash};
use hmac::{Hmac, Mac};
use portcullis_config::SecurityPolicy;
use portcullis_domain::model::{Id, User};
use portcullis_domain::policy::{Subject, can_administer};
use portcullis_domain::time::{Clock, Timestamp};
use portcullis_domain::{Error, Result};
use portcullis_storage::{NewUser, Store, StoreError};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Password,
    /// A web UI session cookie (signed in with a password).
    Session {
        id: Id,
    },
    ApplicationToken {
        id: Id,
        pull_only: bool,
    },
    RefreshToken {
        id: Id,
    },
    /// A bot's registry token obtained by token exchange (only ever on the token
    /// endpoint: nothing else accepts the registry token it yields).
    TokenExchange {
        pull_only: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub method: AuthMethod,
}

impl Authenticated {
    /// Admin-only reads: `Forbidden` for everybody else.
    pub fn require_admin(&self) -> Result<()> {
        if self.user.admin {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }

    /// Admin-only changes: also refused to a read-only credential.
    pub fn require_admin_to_change(&self) -> Result<()> {
        if can_administer(&self.subject()) {
            Ok(())
        } else {
            Err(self.refusal())
        }
    }

    /// Any change at all: refused to a pull-only application token.
    pub fn require_writable(&self) -> Result<()> {
        if self.subject().may_write() {
            Ok(())
        } else {
            Err(Error::ReadOnlyCredential)
        }
    }

    /// Why the policy refused a change: the credential only reads, or the caller may
    /// not do it.
    pub fn refusal(&self) -> Error {
        if self.subject().may_write() {
            Error::Forbidden
        } else {
            Error::ReadOnlyCredential
        }
    }

    /// The caller as the policy sees it.
    pub fn subject(&self) -> Subject {
        Subject {
            user_id: self.user.id,
            admin: self.user.admin,
            bot: self.user.bot,
            pull_only: matches!(
                self.method,
                AuthMethod::ApplicationToken {
                    pull_only: true,
                    ..
                } | AuthMethod::TokenExchange { pull_only: true }
            ),
        }
    }

    /// The application token the caller authenticated with, if any.
    pub fn application_token_id(&self) -> Option<Id> {
        match self.method {
            AuthMethod::ApplicationToken { id, .. } => Some(id),
            _ => None,
        }
    }
}

/// Why authentication failed, when the caller should be told more than "401".
#[derive(Debug)]
pub enum AuthFailure {
    /// Wrong, unknown, disabled, locked or expired: always the same answer outward.
    Invalid,
    /// Too many password checks from this client address (HTTP 429).
    RateLimited,
    /// The credentials could not be checked because the database failed (HTTP 503).
    /// Never counted as a failed login.
    Unavailable(StoreError),
    /// The LDAP directory could not answer (HTTP 503); never counted either.
    DirectoryUnavailable(DirectoryError),
}

impl From<StoreError> for AuthFailure {
    fn from(e: StoreError) -> Self {
        AuthFailure::Unavailable(e)
    }
}

impl From<AuthFailure> for Error {
    fn from(f: AuthFailure) -> Self {
        match f {
            AuthFailure::Invalid => Error::Unauthenticated,
            AuthFailure::RateLimited => Error::RateLimited,
            // Whatever the store reported, the caller cannot be told "wrong password".
            AuthFailure::Unavailable(e) => Error::Unavailable(Box::new(e)),
            AuthFailure::DirectoryUnavailable(e) => Error::Unavailable(Box::new(e)),
        }
    }
}

/// One source of truth for passwords, asked in order by [`Authenticator::password`].
pub enum PasswordVerifier {
    /// The LDAP directory: decides for users who may sign in and for unknown names
    /// (its users before their first sign-in).
    Directory(Arc<Directory>),
    /// The user's local hash (argon2id, or bcrypt from Portus); a dummy one where there
    /// is none, so a refusal costs the same.
    LocalHash,
}

/// What one verifier says.
enum PasswordCheck {
    Verified(VerifiedBy),
    Refused,
    /// It could not answer: it might have said yes.
    Unavailable(DirectoryError),
}

enum VerifiedBy {
    Directory(DirectoryUser),
    LocalHash,
}

impl PasswordVerifier {
    /// Whether it is asked about `candidate` (the eligible user of that name, if any).
    fn decides_for(&self, candidate: Option<&User>, unknown_name: bool) -> bool {
        match self {
            Self::Directory(_) => candidate.is_some() || unknown_name,
            Self::LocalHash => true,
        }
    }

    async fn check(
        &self,
        auth: &Authenticator,
        candidate: Option<&User>,
        username: &str,
        password: &str,
    ) -> PasswordCheck {
        match self {
            Self::Directory(directory) => {
                match auth.ask_directory(directory, username, password).await {
                    Ok(Verdict::Verified(entry)) => {
                        PasswordCheck::Verified(VerifiedBy::Directory(entry))
                    }
                    Ok(Verdict::Refused) => PasswordCheck::Refused,
                    Err(e) => PasswordCheck::Unavailable(e),
                }
            }
            Self::LocalHash => {
                let stored = candidate.and_then(|u| u.password_hash.as_deref());
                if auth.hasher.verify(password, stored).await {
                    PasswordCheck::Verified(VerifiedBy::LocalHash)
                } else {
                    PasswordCheck::Refused
                }
            }
        }
    }
}

/// Entries kept at most; beyond it expired ones are swept, then everything if needed.
const CACHE_MAX_ENTRIES: usize = 100_000;

pub struct Authenticator {
    store: Store,
    clock: Arc<dyn Clock>,
    hasher: PasswordHasher,
    cache_key: [u8; 32],
    cache_ttl_secs: i64,
    cache: Mutex<HashMap<[u8; 32], (Id, Timestamp)>>,
    lockout_attempts: i64,
    lockout_secs: i64,
    refresh_lifetime_secs: i64,
    refresh_idle_secs: i64,
    password_checks: RateLimiter,
    salt: Mutex<Box<dyn FnMut() -> [u8; 16] + Send>>,
    /// `ldap.enabled`: the directory asked before the local hash.
    directory: Option<Arc<Directory>>,
    /// The password chain, in the order asked.
    password_verifiers: Vec<PasswordVerifier>,
    /// The directory failed its last answer: an outage is logged once, not per request.
    directory_down: AtomicBool,
}

impl Authenticator {
    pub fn new(
        store: Store,
        policy: &SecurityPolicy,
        clock: Arc<dyn Clock>,
        random: &dyn RandomSource,
        hasher: PasswordHasher,
        directory: Option<Arc<Directory>>,
    ) -> Self {
        let mut cache_key = [0u8; 32];
        random.fill(&mut cache_key);
        // Salts for rehashing come from the same source, drawn lazily.
        let mut seed = [0u8; 32];
        random.fill(&mut seed);
        let mut counter = 0u64;
        let salt = move || {
            counter += 1;
            let mut mac = hmac(&seed);
            mac.update(&counter.to_le_bytes());
            let out = mac.finalize().into_bytes();
            let mut s = [0u8; 16];
            s.copy_from_slice(&out[..16]);
            s
        };
        Self {
            store,
            password_checks: RateLimiter::new(policy.password_checks_per_minute, clock.clone()),
            clock,
            hasher,
            cache_key,
            cache_ttl_secs: policy.credential_cache_seconds,
            cache: Mutex::new(HashMap::new()),
            lockout_attempts: policy.lockout_attempts,
            lockout_secs: policy.lockout_minutes.saturating_mul(60),
            refresh_lifetime_secs: policy.refresh_token_lifetime_days.saturating_mul(86_400),
            refresh_idle_secs: policy.refresh_token_idle_days.saturating_mul(86_400),
            salt: Mutex::new(Box::new(salt)),
            password_verifiers: directory
                .iter()
                .map(|d| PasswordVerifier::Directory(d.clone()))
                .chain([PasswordVerifier::LocalHash])
                .collect(),
            directory,
            directory_down: AtomicBool::new(false),
        }
    }

    /// The LDAP directory, when `ldap.enabled`.
    pub fn directory(&self) -> Option<&Directory> {
        self.directory.as_deref()
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// A fresh random salt for a password hash.
    pub fn new_salt(&self) -> [u8; 16] {
        let mut f = self.salt.lock().unwrap_or_else(|p| p.into_inner());
        f()
    }

    /// Hashes a new password (argon2id).
    pub async fn hash_password(&self, password: &str) -> Result<String> {
        self.hasher
            .hash(password, self.new_salt())
            .await
            .map_err(Error::internal)
    }

    /// HTTP Basic credentials: an application token (recognised by its prefix) or the
    /// user's password. `client` keys the rate limit (the client's IP address).
    pub async fn basic(
        &self,
        username: &str,
        secret: &str,
        client: &str,
    ) -> Result<Authenticated, AuthFailure> {
        if secret.starts_with(APPLICATION_TOKEN_PREFIX) {
            let auth = self.application_token(secret).await?;
            return if auth.user.username.eq_ignore_ascii_case(username) {
                Ok(auth)
            } else {
                Err(AuthFailure::Invalid)
            };
        }
        self.password(username, secret, client).await
    }

    /// An application token on its own (`Authorization: Bearer`, `Portus-Auth`).
    pub async fn application_token(&self, token: &str) -> Result<Authenticated, AuthFailure> {
        let Some((tok, user)) = self
            .store
            .application_token_by_hash(&token_hash(token))
            .await?
        else {
            return Err(AuthFailure::Invalid);
        };
        let now = self.clock.now();
        // Not subject to the password lockout (see the module comment).
        if tok.expires_at.is_some_and(|exp| exp <= now) || !user.enabled {
            return Err(AuthFailure::Invalid);
        }
        // Best effort, and only when the stored value is stale: a failed "last used"
        // update must not fail the request, and a fresh one needs no round trip.
        if is_stale(tok.last_used_at, now) {
            let _ = self.store.touch_application_token(tok.id, now).await;
        }
        Ok(Authenticated {
            user,
            method: AuthMethod::ApplicationToken {
                id: tok.id,
                pull_only: tok.pull_only,
            },
        })
    }

    /// A refresh token presented for `service`. It works while its user is enabled,
    /// for at most `refresh_token_lifetime_days` since it was issued, while it was used
    /// within `refresh_token_idle_days`, and never past the expiry of the application
    /// token it was obtained with (revoking that token deletes it).
    pub async fn refresh_token(
        &self,
        token: &str,
        service: &str,
    ) -> Result<Authenticated, AuthFailure> {
        let Some(found) = self.store.refresh_token_by_hash(&token_hash(token)).await? else {
            return Err(AuthFailure::Invalid);
        };
        let (rt, user) = (found.token, found.user);
        let now = self.clock.now();
        let last_seen = rt.last_used_at.unwrap_or(rt.created_at);
        let alive = now < rt.created_at.plus_secs(self.refresh_lifetime_secs)
            && now < last_seen.plus_secs(self.refresh_idle_secs)
            && found
                .application_token_expires_at
                .is_none_or(|exp| now < exp);
        if rt.service != service || !user.enabled || !alive {
            return Err(AuthFailure::Invalid);
        }
        if is_stale(rt.last_used_at, now) {
            let _ = self.store.touch_refresh_token(rt.id, now).await;
        }
        Ok(Authenticated {
            user,
            method: AuthMethod::RefreshToken { id: rt.id },
        })
    }

    /// Username and password, through the verified-credential cache. Every refusal —
    /// unknown user, bot, no password, disabled, locked, wrong password — takes one
    /// rate-limit token and one hash verification (a dummy hash where there is nothing
    /// to verify against), so they all cost the same; with LDAP, users and unknown
    /// names also cost one directory look-up.
    pub async fn password(
        &self,
        username: &str,
        password: &str,
        client: &str,
    ) -> Result<Authenticated, AuthFailure> {
        let found = self.store.user_by_username(username).await?;
        let now = self.clock.now();
        let directory = self.directory.as_deref();
        // Bots authenticate with application tokens only. Users without a local hash
        // were made by the directory and sign in only through it.
        let unknown = found.is_none();
        let mut eligible = found.filter(|u| {
            !u.bot
                && (u.password_hash.is_some() || directory.is_some())
                && u.enabled
                && !self.is_locked(u, now)
        });
        if let Some(user) = eligible.as_mut() {
            // A lock that has run out starts a fresh count (as Devise's unlock did), so
            // the next `lockout_attempts` failures lock the account again.
            if let Some(locked_at) = user.locked_at {
                self.store.clear_expired_lock(user.id, locked_at).await?;
                user.failed_attempts = 0;
                user.locked_at = None;
            }
        }
        // Neither clearing a lock nor the bcrypt upgrade below moves the credential
        // version, so this key stays the one to remember a success under.
        let key = eligible.as_ref().map(|u| self.cache_key_for(u, password));
        let hit = key.as_ref().is_some_and(|k| self.cached(k, now));
        crate::metrics::credential_cache(hit);
        if hit && let Some(user) = eligible {
            return Ok(Authenticated {
                user,
                method: AuthMethod::Password,
            });
        }
        self.limit(client)?;
        // The chain: the first verifier that says yes decides; one that cannot answer
        // is remembered, since it might have said yes.
        let mut verified = None;
        let mut unavailable = None;
        for verifier in &self.password_verifiers {
            if !verifier.decides_for(eligible.as_ref(), unknown) {
                continue;
            }
            match verifier
                .check(self, eligible.as_ref(), username, password)
                .await
            {
                PasswordCheck::Verified(by) => {
                    verified = Some(by);
                    break;
                }
                PasswordCheck::Refused => {}
                PasswordCheck::Unavailable(e) => unavailable = Some(e),
            }
        }
        let Some(verified) = verified else {
            if let Some(e) = unavailable {
                // It might have said yes: nothing counts against the user.
                return Err(AuthFailure::DirectoryUnavailable(e));
            }
            if let Some(user) = eligible {
                let updated = self
                    .store
                    .record_failed_login(user.id, now, self.lockout_attempts)
                    .await?;
                if updated.locked_at.is_some() {
                    self.forget_user(user.id);
                }
            }
            return Err(AuthFailure::Invalid);
        };
        let verified_locally = matches!(verified, VerifiedBy::LocalHash);
        let stored = eligible.as_ref().and_then(|u| u.password_hash.clone());
        let mut user = match (eligible, verified) {
            (Some(user), _) => user,
            (None, VerifiedBy::Directory(entry)) => {
                self.create_directory_user(username, entry, now).await?
            }
            // Verified locally means a stored hash, which means an eligible user.
            (None, VerifiedBy::LocalHash) => return Err(AuthFailure::Invalid),
        };
        // An expired lock was cleared above and an active one refused, so only the
        // count can be left over.
        if user.failed_attempts != 0 {
            self.store.clear_failed_logins(user.id).await?;
            user.failed_attempts = 0;
        }
        if let Some(old) = stored
            .as_deref()
            .filter(|h| verified_locally && is_bcrypt(h))
        {
            // Upgrade hashes imported from Portus. Guarded: written only if neither the
            // hash nor the credential version changed since they were read, so a
            // concurrent password change or disable is never undone. The password is
            // the same, so cached proofs stay valid.
            if let Ok(new) = self.hasher.hash(password, self.new_salt()).await
                && self
                    .store
                    .upgrade_password_hash(user.id, old, user.credential_version, &new)
                    .await?
            {
                user.password_hash = Some(new);
            }
        }
        let key = key.unwrap_or_else(|| self.cache_key_for(&user, password));
        self.remember(key, user.id, now);
        Ok(Authenticated {
            user,
            method: AuthMethod::Password,
        })
    }

    /// The directory's answer; an outage is logged when it starts and when it ends,
    /// not once per request.
    async fn ask_directory(
        &self,
        directory: &Directory,
        username: &str,
        password: &str,
    ) -> Result<Verdict, DirectoryError> {
        let answer = directory.verify(username, password).await;
        let was_down = self.directory_down.swap(answer.is_err(), Ordering::SeqCst);
        match &answer {
            Err(e) if !was_down => {
                tracing::warn!(error = %e, "LDAP directory unavailable: its users cannot sign in (cached ones still can)");
            }
            Ok(_) if was_down => {
                tracing::info!(server = directory.server(), "LDAP directory answers again")
            }
            _ => {}
        }
        answer
    }

    /// The account of a directory user's first sign-in (Portus created it on the fly):
    /// no local password, a personal namespace, an admin when found under
    /// `ldap.admin_base` — or when it is the very first user (Portus's rule, decided
    /// in one guarded transaction). An email another account has is left empty, as
    /// Portus did. Two first sign-ins at once end with one account.
    async fn create_directory_user(
        &self,
        username: &str,
        entry: DirectoryUser,
        now: Timestamp,
    ) -> Result<User, AuthFailure> {
        if portcullis_domain::names::validate_username(username).is_err() {
            tracing::warn!(username, dn = %entry.dn, "LDAP user not signed in: not a valid Portcullis username");
            return Err(AuthFailure::Invalid);
        }
        let base = portcullis_domain::names::namespace_name_for_username(username);
        let mut new = NewUser {
            username: username.to_owned(),
            email: entry.email.clone().unwrap_or_default(),
            display_name: None,
            password_hash: None,
            admin: entry.admin,
            bot: false,
        };
        for _ in 0..2 {
            let created = if new.admin {
                self.store.create_user(&new, base.as_deref(), now).await
            } else {
                self.store
                    .sign_up_user(&new, base.as_deref(), true, true, now)
                    .await
            };
            match created {
                Ok(user) => {
                    tracing::info!(username, dn = %entry.dn, admin = user.admin, "created a user on the first LDAP sign-in");
                    return Ok(user);
                }
                Err(StoreError::Conflict("email")) if !new.email.is_empty() => new.email.clear(),
                Err(StoreError::Conflict("username")) => {
                    // Another request's first sign-in created it meanwhile.
                    return self
                        .store
                        .user_by_username(username)
                        .await?
                        .ok_or(AuthFailure::Invalid);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(AuthFailure::Invalid)
    }

    /// Inside a lockout window.
    fn is_locked(&self, user: &User, now: Timestamp) -> bool {
        user.locked_at
            .is_some_and(|at| now < at.plus_secs(self.lockout_secs))
    }

    fn limit(&self, client: &str) -> Result<(), AuthFailure> {
        if self.password_checks.try_acquire(client) {
            Ok(())
        } else {
            Err(AuthFailure::RateLimited)
        }
    }

    fn cache_key_for(&self, user: &User, secret: &str) -> [u8; 32] {
        let mut mac = hmac(&self.cache_key);
        mac.update(&user.id.to_le_bytes());
        mac.update(&user.credential_version.to_le_bytes());
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn cached(&self, key: &[u8; 32], now: Timestamp) -> bool {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(key).is_some_and(|(_, until)| now < *until)
    }

    fn remember(&self, key: [u8; 32], user_id: Id, now: Timestamp) {
        if self.cache_ttl_secs == 0 {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        make_room(&mut cache, now, CACHE_MAX_ENTRIES);
        cache.insert(key, (user_id, now.plus_secs(self.cache_ttl_secs)));
    }

    /// Drops every cached proof for a user. The credential-version bump already makes
    /// them unreachable; this frees the memory at once on this node.
    pub fn forget_user(&self, user_id: Id) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, (uid, _)| *uid != user_id);
    }

    /// Cached proofs currently held (for tests and metrics).
    pub fn cached_entries(&self) -> usize {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Keeps the cache under `max` entries: expired proofs go first; if live ones still
/// fill it, the half that would expire soonest goes, not all of them (emptying it would
/// send every active user to a password hash at once, the storm the cache prevents).
fn make_room(cache: &mut HashMap<[u8; 32], (Id, Timestamp)>, now: Timestamp, max: usize) {
    if cache.len() < max {
        return;
    }
    cache.retain(|_, (_, until)| now < *until);
    if cache.len() < max {
        return;
    }
    let mut expiries: Vec<Timestamp> = cache.values().map(|(_, until)| *until).collect();
    let dropped = (expiries.len() / 2).max(1);
    let cutoff = *expiries.select_nth_unstable(dropped - 1).1;
    cache.retain(|_, (_, until)| *until > cutoff);
}

/// "Last used" is recorded at most once a minute (the store applies the same rule).
fn is_stale(last_used: Option<Timestamp>, now: Timestamp) -> bool {
    last_used.is_none_or(|t| now.0 - t.0 > 60_000)
}

fn hmac(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC-SHA256 accepts keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_chain_asks_the_directory_only_about_users_and_unknown_names() {
        let user = User {
            id: 1,
            username: "alice".into(),
            email: String::new(),
            display_name: None,
            password_hash: None,
            admin: false,
            enabled: true,
            bot: false,
            failed_attempts: 0,
            locked_at: None,
            credential_version: 0,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        };
        let directory = |config: &mut portcullis_config::Ldap| {
            config.enabled = true;
            config.hostname = "127.0.0.1".into();
            config.base = "dc=example,dc=org".into();
        };
        let mut config = portcullis_config::Config::default().ldap;
        directory(&mut config);
        let d = PasswordVerifier::Directory(Arc::new(Directory::new(&config).unwrap()));
        let local = PasswordVerifier::LocalHash;
        // (candidate, unknown name) → (directory asked, local hash asked)
        let cases = [
            (Some(&user), false, (true, true)),
            (None, true, (true, true)),
            // A name that exists but may not sign in (bot, disabled, locked): only
            // the local (dummy) hash, for the equal cost.
            (None, false, (false, true)),
        ];
        for (candidate, unknown, want) in cases {
            assert_eq!(
                (
                    d.decides_for(candidate, unknown),
                    local.decides_for(candidate, unknown)
                ),
                want,
                "{candidate:?} {unknown}"
            );
        }
    }

    fn key(i: u32) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&i.to_le_bytes());
        k
    }

    #[test]
    fn a_full_credential_cache_drops_expired_proofs_then_the_soonest_half() {
        let now = Timestamp(1_000_000);
        // (entries expiring at now + offset s, max) -> entries left, soonest left
        let cases: &[(&[i64], usize, usize, Option<i64>)] = &[
            (&[10, 20, 30], 4, 3, Some(10)),         // room left: untouched
            (&[-5, -1, 10, 20], 4, 2, Some(10)),     // expired ones make room
            (&[10, 20, 30, 40], 4, 2, Some(30)),     // all live: the later half stays
            (&[-1, 10, 20, 30, 40], 4, 2, Some(30)), // both: expired, then half of the rest
            (&[10], 1, 0, None),                     // one slot: it goes
        ];
        for (i, (offsets, max, left, soonest)) in cases.iter().enumerate() {
            let mut cache: HashMap<[u8; 32], (Id, Timestamp)> = offsets
                .iter()
                .enumerate()
                .map(|(n, s)| (key(n as u32), (n as Id, now.plus_secs(*s))))
                .collect();
            make_room(&mut cache, now, *max);
            assert_eq!(cache.len(), *left, "case {i}");
            let first = cache.values().map(|(_, until)| *until).min();
            assert_eq!(first, soonest.map(|s| now.plus_secs(s)), "case {i}");
        }
    }
}
