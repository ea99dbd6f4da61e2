//! Password hashing. Argon2id for new hashes; bcrypt hashes (imported from Portus)
//! verify too and are upgraded on the next successful login.
//!
//! Hashing is deliberately slow, so it runs on the blocking pool behind a semaphore:
//! a burst of logins queues instead of starving the async runtime.

use argon2::password_hash::{PasswordHash, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// Verifications performed (real or dummy): the work a login costs, which tests
    /// compare across refusal reasons.
    verifications: Arc<AtomicU64>,
}

/// A hash that no password matches, verified when a username does not exist so that
/// the answer takes as long as for a real user.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$JG0vDYaDSKzZ5t7A7zXZpNmYRVuK8S7qgbv1lgH6dN0";

impl PasswordHasher {
    /// OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane).
    pub fn new(max_concurrent: usize) -> Self {
        Self::with_params(Params::default(), max_concurrent)
    }

    /// The cheapest valid parameters, for tests that hash many passwords.
    pub fn fast_for_tests() -> Self {
        Self::with_params(
            Params::new(Params::MIN_M_COST, Params::MIN_T_COST, 1, None).unwrap_or_default(),
            4,
        )
    }

    fn with_params(params: Params, max_concurrent: usize) -> Self {
        Self {
            params,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            verifications: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Hashes with a salt drawn from `salt_bytes` (16 random bytes from the caller).
    pub async fn hash(&self, password: &str, salt_bytes: [u8; 16]) -> Result<String, String> {
        let params = self.params.clone();
        let password = password.to_owned();
        self.run(move || {
            let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
            argon2::password_hash::PasswordHasher::hash_password(
                &Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
                password.as_bytes(),
                &salt,
            )
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
        })
        .await?
    }

    /// Checks `password` against a stored hash (argon2 PHC string or bcrypt), or against
    /// a dummy hash when `stored` is `None`, so unknown users cost the same time.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let password = password.to_owned();
        let known = stored.is_some();
        let stored = stored.unwrap_or(DUMMY_HASH).to_owned();
        let ok = self
            .run(move || verify_blocking(&password, &stored))
            .await
            .unwrap_or(false);
        ok && known
    }

    /// How many verifications this hasher (and its clones) performed.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| e.to_string())
    }
}

fn verify_blocking(password: &str, stored: &str) -> bool {
    if is_bcrypt(stored) {
        return bcrypt::verify(password, stored).unwrap_or(false);
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Devise stored `$2a$…` bcrypt hashes.
pub fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2_round_trip_and_dummy() {
        let h = PasswordHasher::fast_for_tests();
        let stored = h.hash("correct horse", [7; 16]).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(h.verify("correct horse", Some(&stored)).await);
        assert!(!h.verify("wrong horse", Some(&stored)).await);
        assert!(!h.verify("correct horse", None).await);
        assert!(!h.verify("x", Some("not a hash")).await);
    }

    #[tokio::test]
    async fn portus_bcrypt_hashes_verify() {
        // A Devise-style cost-4 bcrypt hash made here with the bcrypt crate.
        let stored = bcrypt::hash("portus-password", 4).unwrap();
        assert!(is_bcrypt(&stored));
        let h = PasswordHasher::fast_for_tests();
        assert!(h.verify("portus-password", Some(&stored)).await);
        assert!(!h.verify("other", Some(&stored)).await);
    }

    #[test]
    fn dummy_hash_parses() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
