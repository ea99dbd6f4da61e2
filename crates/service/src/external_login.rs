//! Signing in to the web UI through an identity provider, beside local accounts and
//! LDAP: Portus's `oauth.openid_connect`, `oauth.google_oauth2`, `oauth.github`,
//! `oauth.gitlab` and `oauth.bitbucket` ([`Provider`]).
//!
//! One flow for all of them; what differs is the adapter ([`Adapter`]): OpenID
//! Connect and Google (an OpenID Provider) are the authorization code flow with PKCE,
//! state and nonce and a verified ID token ([`crate::oidc::OidcClient`]); GitHub,
//! GitLab and Bitbucket are plain OAuth 2.0 (state, PKCE where the provider checks it)
//! followed by their user API ([`crate::oauth`]). Then each provider's restrictions
//! (Google's `hd`, GitHub's `organization` and `team`, GitLab's `group`, Bitbucket's
//! `team` workspace) and everyone's `domain`. What the browser carries between the steps is sealed
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
use crate::oauth::{self, Api, ClientAuth, ClientSettings, OAuthClient, Profile};
use crate::oidc::{OidcClient, OidcError, PendingLogin};
use crate::secrets::RandomRng;
use portcullis_domain::model::User;
use portcullis_domain::names::validate_username;
use portcullis_domain::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The provider names in `external_identities` and in the URLs (Portus's).
pub const OPENID_CONNECT: &str = "openid_connect";
pub const GOOGLE: &str = "google_oauth2";
pub const GITHUB: &str = "github";
pub const GITLAB: &str = "gitlab";
pub const BITBUCKET: &str = "bitbucket";

/// An identity provider Portcullis signs in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    OpenIdConnect,
    Google,
    GitHub,
    GitLab,
    Bitbucket,
}

impl Provider {
    /// In the order of the sign-in page's buttons.
    pub const ALL: [Provider; 5] = [
        Provider::OpenIdConnect,
        Provider::Google,
        Provider::GitHub,
        Provider::GitLab,
        Provider::Bitbucket,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Provider::OpenIdConnect => OPENID_CONNECT,
            Provider::Google => GOOGLE,
            Provider::GitHub => GITHUB,
            Provider::GitLab => GITLAB,
            Provider::Bitbucket => BITBUCKET,
        }
    }

    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.id() == id)
    }
}

/// How a provider is spoken to: the one seam between the common flow and the
/// providers.
enum Adapter<'a> {
    /// OpenID Connect (the generic provider, Google): the identity is a verified ID
    /// token.
    Oidc(&'a OidcClient),
    /// Plain OAuth 2.0: the identity is what the provider's API says to the token.
    OAuth(Box<OAuthClient>),
}

/// What the callback learned, before the restrictions are applied.
struct Identified {
    profile: Profile,
    /// The API with the user's access token (plain OAuth), for membership checks.
    api: Option<Api>,
    /// The ID token's `hd` claim (Google Workspace domain).
    hosted_domain: Option<String>,
}

/// The sealed pending cookie: which provider it was started for, and what that
/// provider's adapter checks at the callback (state, PKCE verifier, nonce).
#[derive(Serialize, Deserialize)]
struct Pending {
    provider: String,
    login: PendingLogin,
}
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
    /// The username form of one provider must not link a subject to another: ids of
    /// different providers are different people.
    provider: String,
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
        Provider::ALL
            .into_iter()
            .filter(|p| self.enabled(*p))
            .map(|p| ProviderButton {
                id: p.id(),
                name: self.display_name(p),
            })
            .collect()
    }

    fn enabled(&self, p: Provider) -> bool {
        let o = &self.ctx.config.oauth;
        match p {
            Provider::OpenIdConnect => o.openid_connect.enabled,
            Provider::Google => o.google_oauth2.enabled,
            Provider::GitHub => o.github.enabled,
            Provider::GitLab => o.gitlab.enabled,
            Provider::Bitbucket => o.bitbucket.enabled,
        }
    }

    fn display_name(&self, p: Provider) -> String {
        match p {
            Provider::OpenIdConnect => self.ctx.config.oauth.openid_connect.name.clone(),
            Provider::Google => "Google".into(),
            Provider::GitHub => "GitHub".into(),
            Provider::GitLab => "GitLab".into(),
            Provider::Bitbucket => "Bitbucket".into(),
        }
    }

    /// The provider's `domain`: only verified emails of it may sign in (empty: any).
    fn domain(&self, p: Provider) -> &str {
        let o = &self.ctx.config.oauth;
        match p {
            Provider::OpenIdConnect => &o.openid_connect.domain,
            Provider::Google => &o.google_oauth2.domain,
            Provider::GitHub => &o.github.domain,
            Provider::GitLab => &o.gitlab.domain,
            Provider::Bitbucket => &o.bitbucket.domain,
        }
    }

    /// `id` as an enabled provider; else "not found", as for any unknown path.
    fn provider(&self, id: &str) -> Result<Provider> {
        Provider::from_id(id)
            .filter(|p| self.enabled(*p))
            .ok_or(Error::NotFound("Identity provider"))
    }

    /// Whether the web UI takes usernames and passwords (`oauth.local_login.enabled`,
    /// always with LDAP, as Portus).
    pub fn local_login(&self) -> bool {
        self.ctx.config.oauth.local_login.enabled || self.ctx.auth.directory().is_some()
    }

    /// The HTTP client of the providers: a timeout, and no redirects (a redirected
    /// token request would carry the code elsewhere, an API call the token).
    fn new_http() -> Result<reqwest::Client> {
        reqwest::Client::builder()
            .timeout(PROVIDER_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::internal(e.to_string()))
    }

    /// The adapter of `p`. OpenID clients are discovered on first use: a provider
    /// down at start does not keep Portcullis from starting, and the sign-in button
    /// says it is unavailable.
    async fn adapter(&self, p: Provider) -> Result<Adapter<'_>> {
        let o = &self.ctx.config.oauth;
        let discover = |cell: &'static str, issuer: &str, id: &str, secret: &str| {
            let (issuer, id) = (issuer.to_owned(), id.to_owned());
            let secret = (!secret.is_empty()).then(|| secret.to_owned());
            async move {
                tracing::debug!(provider = cell, %issuer, "discovering the OpenID Provider");
                OidcClient::discover(Self::new_http()?, &issuer, id, secret)
                    .await
                    .map_err(oidc_error)
            }
        };
        let plain = |settings: ClientSettings<'_>| -> Result<Adapter<'static>> {
            let client = OAuthClient::new(self.http()?, settings).map_err(oidc_error)?;
            Ok(Adapter::OAuth(Box::new(client)))
        };
        match p {
            Provider::OpenIdConnect => {
                let c = &o.openid_connect;
                let client = self
                    .ctx
                    .oidc_client
                    .get_or_try_init(|| {
                        discover(OPENID_CONNECT, &c.issuer, &c.identifier, &c.secret)
                    })
                    .await?;
                Ok(Adapter::Oidc(client))
            }
            Provider::Google => {
                let c = &o.google_oauth2;
                let client = self
                    .ctx
                    .google_client
                    .get_or_try_init(|| discover(GOOGLE, c.issuer(), &c.id, &c.secret))
                    .await?;
                Ok(Adapter::Oidc(client))
            }
            Provider::GitHub => {
                let c = &o.github;
                plain(ClientSettings {
                    client_id: &c.client_id,
                    client_secret: &c.client_secret,
                    authorization_endpoint: &oauth::github::authorization_endpoint(c.server()),
                    token_endpoint: &oauth::github::token_endpoint(c.server()),
                    scope: Some(oauth::github::SCOPE),
                    pkce: true,
                    auth: ClientAuth::Form,
                })
            }
            Provider::GitLab => {
                let c = &o.gitlab;
                plain(ClientSettings {
                    client_id: &c.application_id,
                    client_secret: &c.secret,
                    authorization_endpoint: &oauth::gitlab::authorization_endpoint(c.server()),
                    token_endpoint: &oauth::gitlab::token_endpoint(c.server()),
                    scope: Some(oauth::gitlab::scope(!c.group.is_empty())),
                    pkce: true,
                    auth: ClientAuth::Form,
                })
            }
            Provider::Bitbucket => {
                let c = &o.bitbucket;
                plain(ClientSettings {
                    client_id: &c.key,
                    client_secret: &c.secret,
                    authorization_endpoint: &oauth::bitbucket::authorization_endpoint(c.server()),
                    token_endpoint: &oauth::bitbucket::token_endpoint(c.server()),
                    // The consumer's registration holds the scopes; Bitbucket ignores
                    // PKCE, so `state` is the protection.
                    scope: None,
                    pkce: false,
                    auth: ClientAuth::Basic,
                })
            }
        }
    }

    /// One HTTP client for the plain OAuth providers (reqwest clients pool
    /// connections; a new one per request would not).
    fn http(&self) -> Result<reqwest::Client> {
        if let Some(http) = self.ctx.oauth_http.get() {
            return Ok(http.clone());
        }
        let http = Self::new_http()?;
        // Another request may have set it meanwhile: either client is fine.
        let _ = self.ctx.oauth_http.set(http.clone());
        Ok(http)
    }

    /// Starts a sign-in: the provider's authorization URL to send the browser to, and
    /// the sealed pending sign-in for a cookie. `redirect_uri` is this instance's
    /// callback URL, as registered at the provider.
    pub async fn begin(&self, provider: &str, redirect_uri: &str) -> Result<(String, String)> {
        let p = self.provider(provider)?;
        let mut random = RandomRng(self.ctx.random.as_ref());
        let (mut url, login) = match self.adapter(p).await? {
            Adapter::Oidc(client) => client.begin(redirect_uri, &mut random),
            Adapter::OAuth(client) => client.begin(redirect_uri, &mut random),
        };
        let hd = &self.ctx.config.oauth.google_oauth2.options.hd;
        if p == Provider::Google && !hd.is_empty() {
            // Google's account chooser then offers only that Workspace's accounts; the
            // ID token's `hd` is what is checked.
            url = with_query(&url, "hd", hd)?;
        }
        let pending = Pending {
            provider: p.id().to_owned(),
            login,
        };
        Ok((url, self.seal(&pending, PENDING_AAD)?))
    }

    /// The provider's callback: `pending` is the cookie [`Self::begin`] set; `error` the
    /// provider's `error` parameter, else `code`. Refusals (a wrong state, an ID token
    /// that does not verify, a disabled account, an email outside `domain`, someone
    /// outside the provider's restriction) are `Unprocessable` with a message for the
    /// page; the provider unreachable is `Unavailable`.
    pub async fn finish(
        &self,
        provider: &str,
        pending: &str,
        state: &str,
        code: Option<&str>,
        error: Option<&str>,
    ) -> Result<Outcome> {
        let p = self.provider(provider)?;
        let adapter = self.adapter(p).await?;
        let pending: Pending = self
            .open(pending, PENDING_AAD)
            .filter(|pending: &Pending| pending.provider == p.id())
            .ok_or_else(|| {
                refused("The sign-in took too long or was started in another browser. Try again.")
            })?;
        let identified = self
            .identify(p, &adapter, &pending.login, state, code, error)
            .await
            .map_err(|e| {
                tracing::info!(provider, reason = %e, "sign-in through the identity provider refused");
                oidc_error(e)
            })?;
        let profile = self.admit(p, identified).await?;
        self.sign_in_identity(p, profile).await
    }

    /// The adapter's half of the callback: who the provider says signed in.
    async fn identify(
        &self,
        p: Provider,
        adapter: &Adapter<'_>,
        pending: &PendingLogin,
        state: &str,
        code: Option<&str>,
        error: Option<&str>,
    ) -> std::result::Result<Identified, OidcError> {
        let Some(code) = code.filter(|_| error.is_none()) else {
            return Err(match (adapter, error) {
                (Adapter::Oidc(c), Some(e)) => c.callback_error(pending, state, e),
                (Adapter::OAuth(c), Some(e)) => c.callback_error(pending, state, e),
                (_, None) => OidcError::Invalid("no code".into()),
            });
        };
        match adapter {
            Adapter::Oidc(client) => {
                let now = self.ctx.clock.now().as_secs();
                let id = client.finish(pending, state, code, now).await?;
                let hosted_domain = id
                    .claims
                    .get("hd")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                Ok(Identified {
                    profile: Profile {
                        subject: id.subject,
                        username: id.preferred_username,
                        name: id.name,
                        email: id.email,
                        email_verified: id.email_verified,
                    },
                    api: None,
                    hosted_domain,
                })
            }
            Adapter::OAuth(client) => {
                let token = client.finish(pending, state, code).await?;
                let o = &self.ctx.config.oauth;
                let http = self.http().map_err(|e| OidcError::Invalid(e.to_string()))?;
                let (api, profile) = match p {
                    Provider::GitHub => {
                        let api = Api::new(
                            http,
                            &oauth::github::api_base(o.github.server()),
                            token,
                            oauth::github::ACCEPT_JSON,
                        )?;
                        let profile = oauth::github::profile(&api).await?;
                        (api, profile)
                    }
                    Provider::GitLab => {
                        let api = Api::new(
                            http,
                            &oauth::gitlab::api_base(o.gitlab.server()),
                            token,
                            "application/json",
                        )?;
                        let profile = oauth::gitlab::profile(&api).await?;
                        (api, profile)
                    }
                    // Bitbucket (OpenID providers have the other adapter).
                    _ => {
                        let api = Api::new(
                            http,
                            &oauth::bitbucket::api_base(o.bitbucket.server()),
                            token,
                            "application/json",
                        )?;
                        let profile = oauth::bitbucket::profile(&api).await?;
                        (api, profile)
                    }
                };
                Ok(Identified {
                    profile,
                    api: Some(api),
                    hosted_domain: None,
                })
            }
        }
    }

    /// The provider's restrictions and `domain`; a refusal says why on the page and in
    /// the log.
    async fn admit(&self, p: Provider, identified: Identified) -> Result<Profile> {
        let Identified {
            profile,
            api,
            hosted_domain,
        } = identified;
        let provider = p.id();
        let o = &self.ctx.config.oauth;
        let deny = |why: &str, message: String| {
            tracing::info!(provider, subject = %profile.subject, why, "sign-in refused by a restriction");
            Err(refused(&message))
        };
        let membership = |e: OidcError| {
            tracing::info!(provider, reason = %e, "membership check at the identity provider failed");
            oidc_error(e)
        };
        match (p, &api) {
            (Provider::Google, _) => {
                let hd = &o.google_oauth2.options.hd;
                let matches = hosted_domain
                    .as_deref()
                    .is_some_and(|claim| claim.eq_ignore_ascii_case(hd));
                if !hd.is_empty() && !matches {
                    return deny(
                        "oauth.google_oauth2.options.hd",
                        format!("Only {hd} Google Workspace accounts may sign in here."),
                    );
                }
            }
            (Provider::GitHub, Some(api)) => {
                let (org, team) = (&o.github.organization, &o.github.team);
                let orgs = if org.is_empty() {
                    Vec::new()
                } else {
                    oauth::github::organizations(api)
                        .await
                        .map_err(membership)?
                };
                let teams = if team.is_empty() {
                    Vec::new()
                } else {
                    oauth::github::teams(api).await.map_err(membership)?
                };
                if !oauth::github::admits(org, team, &orgs, &teams) {
                    let what = if team.is_empty() {
                        format!("the {org} organization")
                    } else {
                        format!("the {team} team of {org}")
                    };
                    return deny(
                        "oauth.github.organization/team",
                        format!("Only members of {what} on GitHub may sign in here."),
                    );
                }
            }
            (Provider::GitLab, Some(api)) => {
                let group = &o.gitlab.group;
                if !group.is_empty() {
                    let groups = oauth::gitlab::groups(api).await.map_err(membership)?;
                    if !oauth::gitlab::admits(group, &groups) {
                        return deny(
                            "oauth.gitlab.group",
                            format!(
                                "Only members of the {group} group on GitLab may sign in here."
                            ),
                        );
                    }
                }
            }
            (Provider::Bitbucket, Some(api)) => {
                let team = &o.bitbucket.options.team;
                if !team.is_empty() {
                    let workspaces = oauth::bitbucket::workspaces(api, team)
                        .await
                        .map_err(membership)?;
                    if !oauth::bitbucket::admits(team, &workspaces) {
                        return deny(
                            "oauth.bitbucket.options.team",
                            format!(
                                "Only members of the {team} workspace on Bitbucket may sign in here."
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
        let domain = self.domain(p);
        if !domain.is_empty() {
            let in_domain = profile.email_verified
                && profile.email.as_deref().is_some_and(|e| {
                    e.rsplit_once('@')
                        .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain))
                });
            if !in_domain {
                return deny(
                    "domain",
                    format!(
                        "Only accounts with a verified {domain} email address may sign in here."
                    ),
                );
            }
        }
        Ok(profile)
    }

    async fn sign_in_identity(&self, p: Provider, id: Profile) -> Result<Outcome> {
        let provider = p.id();
        let store = &self.ctx.store;
        let verified_email = id.email.clone().filter(|_| id.email_verified);
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
                id.username.as_deref(),
                id.email.as_deref(),
            ))
            .await?;
        let pending = PendingIdentity {
            provider: provider.to_owned(),
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
        let provider = self.provider(provider)?.id();
        let pending: PendingIdentity = self
            .open(sealed, IDENTITY_AAD)
            .filter(|pending: &PendingIdentity| pending.provider == provider)
            .ok_or_else(|| {
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

/// `url` with one more query parameter.
fn with_query(url: &str, name: &str, value: &str) -> Result<String> {
    let mut url = url::Url::parse(url).map_err(|e| Error::internal(e.to_string()))?;
    url.query_pairs_mut().append_pair(name, value);
    Ok(url.into())
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
