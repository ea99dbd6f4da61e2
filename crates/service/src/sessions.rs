//! Web UI sessions: sign-in with a password (through the same [`Authenticator`] as the
//! token endpoint, so lockout, rate limit, timing and the cache rules are shared),
//! resuming a session from its cookie, sign-out, and the CSRF token bound to a session.
//!
//! Sessions live in the database so several web nodes share them. The cookie carries
//! 256 random bits; only their SHA-256 is stored. A session ends after
//! `security_policy.session_idle_minutes` without a request, after
//! `session_lifetime_hours` in any case, at sign-out, and when its user's password
//! changes or the user is disabled (the store deletes the sessions in that update).
//!
//! [`Authenticator`]: crate::auth::Authenticator

use crate::auth::{AuthMethod, Authenticated};
use crate::secrets::{
    SESSION_TOKEN_PREFIX, VISITOR_TOKEN_PREFIX, constant_time_eq, new_token, token_hash,
};
use portcullis_domain::model::{Id, Session};
use portcullis_domain::{Error, Result};
use sha2::{Digest, Sha256};

/// Longest user agent kept with a session (it is only shown to its owner).
const MAX_USER_AGENT: usize = 200;

crate::service! {
    /// Web UI sessions.
    SessionService
}

/// A new session: who signed in, and the secret for the cookie (shown to nobody else).
#[derive(Debug)]
pub struct NewSession {
    pub caller: Authenticated,
    pub cookie: String,
}

impl SessionService {
    /// Checks a password and opens a session. Refusals are the token endpoint's:
    /// `Unauthenticated` for a wrong, unknown, disabled or locked account alike (one
    /// password check each), `RateLimited`, `Unavailable`.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        client: &str,
        user_agent: &str,
    ) -> Result<NewSession> {
        let caller = self.ctx.auth.password(username, password, client).await?;
        self.open(caller, user_agent).await
    }

    /// Opens a session for a caller who has just proved who they are (sign-in, sign-up,
    /// a password change that ended the old sessions).
    pub async fn open(&self, caller: Authenticated, user_agent: &str) -> Result<NewSession> {
        let now = self.ctx.clock.now();
        let lifetime = self.ctx.config.security_policy.session_lifetime_hours * 3600;
        let cookie = new_token(self.ctx.random.as_ref(), SESSION_TOKEN_PREFIX);
        let agent: String = user_agent.chars().take(MAX_USER_AGENT).collect();
        let session = self
            .ctx
            .store
            .create_session(
                caller.user.id,
                &token_hash(&cookie),
                &agent,
                now,
                now.plus_secs(lifetime),
            )
            .await?;
        Ok(NewSession {
            caller: Authenticated {
                user: caller.user,
                method: AuthMethod::Session { id: session.id },
            },
            cookie,
        })
    }

    /// The caller behind a session cookie; `None` when it is unknown, timed out, or its
    /// user is disabled. A database outage is `Unavailable`, never "signed out".
    pub async fn resume(&self, cookie: &str) -> Result<Option<Authenticated>> {
        if !cookie.starts_with(SESSION_TOKEN_PREFIX) {
            return Ok(None);
        }
        let Some((session, user)) = self.ctx.store.session_by_hash(&token_hash(cookie)).await?
        else {
            return Ok(None);
        };
        let now = self.ctx.clock.now();
        let idle = self.ctx.config.security_policy.session_idle_minutes * 60;
        if !user.enabled || now >= session.expires_at || session.last_seen_at.plus_secs(idle) <= now
        {
            return Ok(None);
        }
        self.ctx.store.touch_session(session.id, now).await?;
        Ok(Some(Authenticated {
            user,
            method: AuthMethod::Session { id: session.id },
        }))
    }

    /// A fresh value for the cookie that binds the CSRF token of a visitor who has no
    /// session yet (the sign-in and sign-up forms).
    pub fn visitor_cookie(&self) -> String {
        new_token(self.ctx.random.as_ref(), VISITOR_TOKEN_PREFIX)
    }

    /// Ends the session of this cookie (nothing happens for an unknown one).
    pub async fn sign_out(&self, cookie: &str) -> Result<()> {
        Ok(self
            .ctx
            .store
            .delete_session_by_hash(&token_hash(cookie))
            .await?)
    }

    /// The caller's own sessions (the profile page lists them).
    pub async fn list(&self, actor: &Authenticated) -> Result<Vec<Session>> {
        Ok(self.ctx.store.list_sessions(actor.user.id).await?)
    }

    /// Ends one of the caller's own sessions.
    pub async fn end(&self, actor: &Authenticated, id: Id) -> Result<()> {
        self.ctx
            .store
            .delete_session(actor.user.id, id)
            .await
            .map_err(|e| match e {
                portcullis_storage::StoreError::NotFound => Error::NotFound("Session"),
                other => other.into(),
            })
    }
}

/// The CSRF token of a session (or of a pre-session cookie): derived from the cookie's
/// secret, so every node computes the same one and nothing more is stored. It reveals
/// nothing about the secret.
pub fn csrf_token(cookie: &str) -> String {
    let digest = Sha256::digest(format!("portcullis-csrf\0{cookie}").as_bytes());
    hex::encode(&digest[..16])
}

/// Whether a submitted form token is the one of this cookie (constant time).
pub fn csrf_matches(cookie: &str, submitted: &str) -> bool {
    constant_time_eq(csrf_token(cookie).as_bytes(), submitted.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_are_bound_to_their_cookie() {
        let a = csrf_token("pcs_a");
        assert_eq!(a.len(), 32);
        assert_eq!(a, csrf_token("pcs_a"));
        assert_ne!(a, csrf_token("pcs_b"));
        assert!(csrf_matches("pcs_a", &a));
        assert!(!csrf_matches("pcs_b", &a));
        assert!(!csrf_matches("pcs_a", ""));
    }
}
