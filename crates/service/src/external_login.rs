//! Signing in to the web UI through an OpenID Connect provider (Portus's
//! `oauth.openid_connect`), beside local accounts and LDAP.
//!
//! The flow is the authorization code flow with PKCE, state and nonce
//! ([`crate::oidc::OidcClient`]). What the browser carries between the steps is sealed
//! (AES-GCM with the key of the webhook secrets) and short-lived: the pending sign-in
//! (state, nonce, PKCE verifier) on the way to the provider, and for a new user the
//! verified identity on the way to the username page. The browser can neither read
//! nor change them, so nothing is kept on the server for a sign-in never finished.
//!
//! Who signs in: the user linked to `(provider, subject)`; else, as Portus, the user
//! whose email the provider says is verified, now linked; else a new account, whose
//! username the person chooses (suggested from the provider's username or email).
//! Accounts from a provider have no password: `docker login` takes an application
//! token (the profile page says so).

use crate::auth::{AuthMethod, Authenticated};
use crate::oidc::{OidcClient, OidcError, PendingLogin, VerifiedIdentity};
use crate::secrets::RandomRng;
use portcullis_domain::model::User;
use portcullis_domain::names::validate_username;
use portcullis_domain::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The provider name in `external_identities` and in the URLs (Portus's).
pub const OPENID_CONNECT: &str = "openid_connect";
/// How long a started sign-in, or the username page of a new user, stays usable.
const STEP_SECS: i64 = 600;
const PENDING_AAD: &[u8] = b"oidc:pending";
const IDENTITY_AAD: &[u8] = b"oidc:identity";
/// How long a call to the provider may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// A sign-in button on the sign-in page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderButton {
    pub id: &'static str,
    pub name: String,
}

/// Where a provider's callback leads.
#[derive(Debug)]
pub enum Outcome {
    SignedIn(Authenticated),
    /// Nobody here yet: the username page, with what it suggests and the sealed
    /// identity its form carries back.
    ChooseUsername(NewAccount),
}

/// The username page of someone new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub sealed: String,
}

#[derive(Serialize, Deserialize)]
struct Sealed<T> {
    value: T,
    /// Unix seconds after which it is refused.
    expires: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingIdentity {
    subject: String,
    email: Option<String>,
    name: Option<String>,
}

crate::service! {
    /// Web sign-in through identity providers.
    ExternalLoginService
}

impl ExternalLoginService {
    /// The provider buttons of the sign-in page.
    pub fn providers(&self) -> Vec<ProviderButton> {
        let o = &self.ctx.config.oauth.openid_connect;
        if o.enabled {
            vec![ProviderButton {
                id: OPENID_CONNECT,
                name: o.name.clone(),
            }]
        } else {
            Vec::new()
        }
    }

    /// Whether the web UI takes usernames and passwords (`oauth.local_login.enabled`,
    /// always with LDAP, as Portus).
    pub fn local_login(&self) -> bool {
        self.ctx.config.oauth.local_login.enabled || self.ctx.auth.directory().is_some()
    }

    /// The client, discovered on first use: a provider down at start does not keep
    /// Portcullis from starting, and the sign-in button says it is unavailable.
    async fn client(&self, provider: &str) -> Result<&OidcClient> {
        let o = &self.ctx.config.oauth.openid_connect;
        if provider != OPENID_CONNECT || !o.enabled {
            return Err(Error::NotFound("Identity provider"));
        }
        self.ctx
            .oidc_client
            .get_or_try_init(|| async {
                let http = reqwest::Client::builder()
                    .timeout(PROVIDER_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| Error::internal(e.to_string()))?;
                let secret = (!o.secret.is_empty()).then(|| o.secret.clone());
                OidcClient::discover(http, &o.issuer, o.identifier.clone(), secret)
                    .await
                    .map_err(oidc_error)
            })
            .await
    }

    /// Starts a sign-in: the provider's authorization URL to send the browser to, and
    /// the sealed pending sign-in for a cookie. `redirect_uri` is this instance's
    /// callback URL, as registered at the provider.
    pub async fn begin(&self, provider: &str, redirect_uri: &str) -> Result<(String, String)> {
        let client = self.client(provider).await?;
        let (url, pending) = client.begin(redirect_uri, &mut RandomRng(self.ctx.random.as_ref()));
        Ok((url, self.seal(&pending, PENDING_AAD)?))
    }

    /// The provider's callback: `pending` is the cookie [`Self::begin`] set; `error` the
    /// provider's `error` parameter, else `code`. Refusals (a wrong state, an ID token
    /// that does not verify, a disabled account, an email outside `domain`) are
    /// `Forbidden` with a message for the page; the provider unreachable is
    /// `Unavailable`.
    pub async fn finish(
        &self,
        provider: &str,
        pending: &str,
        state: &str,
        code: Option<&str>,
        error: Option<&str>,
    ) -> Result<Outcome> {
        let client = self.client(provider).await?;
        let pending: PendingLogin = self.open(pending, PENDING_AAD).ok_or_else(|| {
            refused("The sign-in took too long or was started in another browser. Try again.")
        })?;
        let now = self.ctx.clock.now().as_secs();
        let identity = match (error, code) {
            (Some(e), _) => Err(client.callback_error(&pending, state, e)),
            (None, Some(code)) => client.finish(&pending, state, code, now).await,
            (None, None) => Err(OidcError::Invalid("no code".into())),
        }
        .map_err(|e| {
            tracing::info!(provider, reason = %e, "sign-in through the identity provider refused");
            oidc_error(e)
        })?;
        self.sign_in_identity(provider, identity).await
    }

    async fn sign_in_identity(&self, provider: &str, id: VerifiedIdentity) -> Result<Outcome> {
        let store = &self.ctx.store;
        let verified_email = id.email.clone().filter(|_| id.email_verified);
        let domain = &self.ctx.config.oauth.openid_connect.domain;
        if !domain.is_empty() {
            let in_domain = verified_email.as_deref().is_some_and(|e| {
                e.rsplit_once('@')
                    .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain))
            });
            if !in_domain {
                tracing::info!(provider, subject = %id.subject, "identity outside oauth.openid_connect.domain refused");
                return Err(refused(&format!(
                    "Only accounts with a verified {domain} email address may sign in here."
                )));
            }
        }
        if id.subject.is_empty() {
            return Err(refused("The identity provider named nobody."));
        }
        let now = self.ctx.clock.now();
        if let Some(user) = store.identity_user(provider, &id.subject).await? {
            store.identity_used(provider, &id.subject, now).await?;
            return self.signed_in(user).map(Outcome::SignedIn);
        }
        // Portus links by email; only an address the provider verified may take over
        // an account, and never a bot's.
        if let Some(email) = &verified_email
            && let Some(user) = store.user_by_email(email).await?.filter(|u| !u.bot)
        {
            match store
                .link_identity(user.id, provider, &id.subject, now)
                .await
            {
                Ok(()) => {
                    tracing::info!(provider, user = %user.username, "identity linked by verified email");
                    return self.signed_in(user).map(Outcome::SignedIn);
                }
                // Linked meanwhile by a concurrent callback: whoever it is now.
                Err(portcullis_storage::StoreError::Conflict(_)) => {
                    return self
                        .linked_meanwhile(provider, &id.subject)
                        .await
                        .map(Outcome::SignedIn);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let suggested = self
            .free_username(&suggested_username(
                id.preferred_username.as_deref(),
                id.email.as_deref(),
            ))
            .await?;
        let pending = PendingIdentity {
            subject: id.subject,
            email: verified_email.clone(),
            name: id.name.clone(),
        };
        Ok(Outcome::ChooseUsername(NewAccount {
            username: suggested,
            email: verified_email.or(id.email).unwrap_or_default(),
            display_name: id.name.unwrap_or_default(),
            sealed: self.seal(&pending, IDENTITY_AAD)?,
        }))
    }

    /// The username page's form: creates the account linked to the identity sealed in
    /// `sealed`, and signs it in.
    pub async fn create_account(
        &self,
        provider: &str,
        sealed: &str,
        username: &str,
        email: &str,
        display_name: &str,
    ) -> Result<Authenticated> {
        self.client(provider).await?;
        let pending: PendingIdentity = self.open(sealed, IDENTITY_AAD).ok_or_else(|| {
            refused("This page is too old: sign in with the identity provider again.")
        })?;
        // Created meanwhile (this form sent twice, another tab): that account.
        if let Some(user) = self
            .ctx
            .store
            .identity_user(provider, &pending.subject)
            .await?
        {
            return self.signed_in(user);
        }
        // A verified address is the provider's; another one is the person's word, as
        // at sign-up.
        let email = pending.email.as_deref().unwrap_or(email);
        let display = (!display_name.trim().is_empty()).then_some(display_name);
        let created = crate::users::UserService::new(self.ctx.clone())
            .sign_up_external(
                username.trim(),
                email.trim(),
                display,
                (provider, &pending.subject),
            )
            .await;
        match created {
            Ok(user) => {
                tracing::info!(provider, user = %user.username, "account created through the identity provider");
                self.signed_in(user)
            }
            Err(Error::Invalid(fields)) if fields.contains_key("identity") => {
                self.linked_meanwhile(provider, &pending.subject).await
            }
            Err(e) => Err(e),
        }
    }

    async fn linked_meanwhile(&self, provider: &str, subject: &str) -> Result<Authenticated> {
        match self.ctx.store.identity_user(provider, subject).await? {
            Some(user) => self.signed_in(user),
            None => Err(refused("Sign in again.")),
        }
    }

    fn signed_in(&self, user: User) -> Result<Authenticated> {
        if !user.enabled {
            return Err(refused("This account is disabled."));
        }
        // The provider proved who they are, as a password would have.
        Ok(Authenticated {
            user,
            method: AuthMethod::Password,
        })
    }

    /// `base`, else `base_01` … `base_99` (Portus's suffixes), the first nobody has.
    async fn free_username(&self, base: &str) -> Result<String> {
        let store = &self.ctx.store;
        if store.user_by_username(base).await?.is_none() {
            return Ok(base.to_owned());
        }
        for n in 1..100 {
            let candidate = format!("{base}_{n:02}");
            if store.user_by_username(&candidate).await?.is_none() {
                return Ok(candidate);
            }
        }
        Ok(String::new())
    }

    fn seal<T: Serialize>(&self, value: &T, aad: &[u8]) -> Result<String> {
        let sealed = Sealed {
            value,
            expires: self.ctx.clock.now().as_secs() + STEP_SECS,
        };
        let json = serde_json::to_vec(&sealed).map_err(|e| Error::internal(e.to_string()))?;
        self.ctx
            .webhooks
            .sealer()
            .seal(&json, aad, |nonce| self.ctx.random.fill(nonce))
            .map_err(|e| Error::internal(format!("sealing a sign-in: {e}")))
    }

    /// `None` when it does not open (changed, from another key) or has expired.
    fn open<T: for<'de> Deserialize<'de>>(&self, sealed: &str, aad: &[u8]) -> Option<T> {
        let json = self.ctx.webhooks.sealer().open(sealed, aad).ok()?;
        let sealed: Sealed<T> = serde_json::from_slice(&json).ok()?;
        (sealed.expires >= self.ctx.clock.now().as_secs()).then_some(sealed.value)
    }
}

fn refused(message: &str) -> Error {
    Error::Unprocessable(message.to_owned())
}

fn oidc_error(e: OidcError) -> Error {
    match e {
        OidcError::Unreachable(reason) => Error::Unavailable(reason.into()),
        OidcError::Provider(code) if code == "access_denied" => {
            refused("The sign-in was cancelled at the identity provider.")
        }
        OidcError::Provider(_) | OidcError::Invalid(_) => {
            refused("The identity provider's answer could not be verified. Try again.")
        }
    }
}

/// A username from the provider's `preferred_username`, else the email's local part,
/// made valid: lower case, other characters dropped, `user` when nothing is left.
pub fn suggested_username(preferred: Option<&str>, email: Option<&str>) -> String {
    let from_email = email.and_then(|e| e.split('@').next());
    for source in [preferred, from_email].into_iter().flatten() {
        let cleaned: String = source
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            .collect();
        let cleaned = cleaned.trim_start_matches(['_', '.', '-']);
        let cleaned: String = cleaned.chars().take(60).collect();
        if validate_username(&cleaned).is_ok() {
            return cleaned;
        }
    }
    "user".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_suggested_from_the_provider() {
        let cases = [
            (Some("Alice"), None, "alice"),
            (Some("bob smith"), None, "bobsmith"),
            (Some("__x"), None, "x"),
            (None, Some("Carol.Jones@example.org"), "carol.jones"),
            (Some("!!!"), Some("dave@example.org"), "dave"),
            (Some("ünïcode"), None, "ncode"),
            (None, None, "user"),
        ];
        for (preferred, email, want) in cases {
            assert_eq!(
                suggested_username(preferred, email),
                want,
                "{preferred:?} {email:?}"
            );
        }
    }
}
