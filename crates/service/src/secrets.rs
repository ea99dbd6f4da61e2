//! Random secrets and their stored form.
//!
//! Application and refresh tokens carry 256 random bits behind a recognisable prefix
//! (so secret scanners can find leaked ones). Because they are uniformly random, a
//! plain SHA-256 is a safe stored form — no slow KDF needed — and lookup is one indexed
//! query by hash.

use base64::Engine;
use sha2::{Digest, Sha256};

/// Prefix of application tokens ("Portcullis Application Token").
pub const APPLICATION_TOKEN_PREFIX: &str = "pcat_";
/// Prefix of refresh (identity) tokens handed to `docker login`.
pub const REFRESH_TOKEN_PREFIX: &str = "pcrt_";
/// Prefix of web UI session secrets (the cookie's value).
pub const SESSION_TOKEN_PREFIX: &str = "pcs_";
/// Prefix of single-use password reset tokens.
pub const RESET_TOKEN_PREFIX: &str = "pcpr_";
/// Prefix of the value binding a signed-out visitor's CSRF token.
pub const VISITOR_TOKEN_PREFIX: &str = "pcv_";

/// The source of randomness; tests pass a seeded one.
pub trait RandomSource: Send + Sync + 'static {
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        use rand::RngCore;
        // ThreadRng: a CSPRNG seeded from, and periodically reseeded by, the OS.
        rand::rng().fill_bytes(buf);
    }
}

/// A deterministic source for tests: a counter run through SHA-256.
#[derive(Debug, Default)]
pub struct SeededRandom(std::sync::atomic::AtomicU64);

impl RandomSource for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(32) {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let block = Sha256::digest(n.to_le_bytes());
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

/// A new secret: `prefix` + 43 characters of base64url (256 bits).
pub fn new_token(random: &dyn RandomSource, prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    random.fill(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A random identifier (a JWT's `jti`): 192 bits as 32 characters of base64url.
pub fn random_id(random: &dyn RandomSource) -> String {
    let mut bytes = [0u8; 24];
    random.fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a high-entropy token: lowercase hex SHA-256.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares secrets without leaking where they differ or how long the expected one is:
/// both sides are hashed first, so the comparison always runs over 32 bytes.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    Sha256::digest(a).ct_eq(&Sha256::digest(b)).into()
}

/// A [`RandomSource`] as a `rand` generator, for code written against `RngCore`.
pub struct RandomRng<'a>(pub &'a dyn RandomSource);

impl rand::RngCore for RandomRng<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_prefix_and_256_bits() {
        let r = SeededRandom::default();
        let a = new_token(&r, APPLICATION_TOKEN_PREFIX);
        let b = new_token(&r, APPLICATION_TOKEN_PREFIX);
        assert!(a.starts_with("pcat_"));
        assert_eq!(a.len(), 5 + 43);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 64);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn random_ids_come_from_the_source() {
        let (a, b) = (SeededRandom::default(), SeededRandom::default());
        let first = random_id(&a);
        assert_eq!(first.len(), 32);
        assert_eq!(first, random_id(&b), "same seed, same id");
        assert_ne!(first, random_id(&a));
    }
}
