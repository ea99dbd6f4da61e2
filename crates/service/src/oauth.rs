//! Plain OAuth 2.0 sign-in (RFC 6749's authorization code grant, with PKCE, RFC 7636,
//! where the provider takes it) and the user APIs of the providers Portus offered
//! besides OpenID Connect: GitHub, GitLab and Bitbucket Cloud. Google is an OpenID
//! Provider and goes through [`crate::oidc::OidcClient`] instead.
//!
//! These providers issue no ID token: who signed in is what their API says to the
//! access token, so the token request goes only to the configured token endpoint
//! (redirects are not followed) and the API calls only to the configured API base
//! (a `Link`/`next` page elsewhere is refused: the token must not leave).
//!
//! As in `oidc.rs`, inputs are plain values (no configuration structs, routes or
//! storage), randomness is a parameter, and the caller's `reqwest::Client` sets the
//! timeouts. Errors are [`OidcError`]s with the same meaning: `Unreachable` (network,
//! 5xx: a 503), `Provider` (an OAuth error code), `Invalid` (refuse). Access tokens,
//! codes and secrets never appear in messages or logs.
//!
//! Documented APIs used:
//! - GitHub: <https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps>,
//!   <https://docs.github.com/en/rest/users/users#get-the-authenticated-user>,
//!   <https://docs.github.com/en/rest/users/emails#list-email-addresses-for-the-authenticated-user>,
//!   <https://docs.github.com/en/rest/orgs/orgs#list-organizations-for-the-authenticated-user>,
//!   <https://docs.github.com/en/rest/teams/teams#list-teams-for-the-authenticated-user>.
//! - GitLab: <https://docs.gitlab.com/api/oauth2/>, <https://docs.gitlab.com/api/users/#get-the-current-user>,
//!   <https://docs.gitlab.com/api/groups/#list-groups>.
//! - Bitbucket Cloud: <https://developer.atlassian.com/cloud/bitbucket/oauth-2/>,
//!   <https://developer.atlassian.com/cloud/bitbucket/rest/api-group-users/>,
//!   <https://developer.atlassian.com/cloud/bitbucket/rest/api-group-workspaces/#api-user-permissions-workspaces-get>.

use crate::oidc::{
    OidcError, PendingLogin, RANDOM_BYTES, check_state, error_code, invalid, read_limited,
    unreachable,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, LINK, USER_AGENT};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use url::Url;

/// List pages followed at most (100 entries each): someone in more organizations,
/// teams or groups than that is checked against the first ones only.
const MAX_PAGES: usize = 10;

/// Who signed in, as the provider's API states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The provider's stable id (a number, Bitbucket's UUID): usernames can change
    /// and be taken by someone else afterwards.
    pub subject: String,
    pub username: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Whether the provider verified `email`: only then may it link an account.
    pub email_verified: bool,
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form (GitHub's and GitLab's way).
    Form,
    /// HTTP Basic (Bitbucket's).
    Basic,
}

/// A registered client of one OAuth 2.0 provider.
pub struct OAuthClient {
    http: reqwest::Client,
    client_id: String,
    client_secret: String,
    authorization_endpoint: Url,
    token_endpoint: Url,
    scope: Option<String>,
    pkce: bool,
    auth: ClientAuth,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("token_endpoint", &self.token_endpoint.as_str())
            .finish_non_exhaustive()
    }
}

/// An access token; its `Debug` does not show it.
pub struct AccessToken(String);

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(...)")
    }
}

fn url(name: &str, value: &str) -> Result<Url, OidcError> {
    Url::parse(value).map_err(|_| invalid(format!("{name} is not a URL")))
}

/// What [`OAuthClient::new`] needs: the registration and the provider's endpoints.
pub struct ClientSettings<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub authorization_endpoint: &'a str,
    pub token_endpoint: &'a str,
    /// `None` when the provider takes the scopes from the client's registration
    /// (Bitbucket).
    pub scope: Option<&'a str>,
    /// Send an S256 challenge. Off for providers that do not check it (Bitbucket):
    /// it would protect nothing there.
    pub pkce: bool,
    pub auth: ClientAuth,
}

impl OAuthClient {
    pub fn new(http: reqwest::Client, s: ClientSettings<'_>) -> Result<Self, OidcError> {
        Ok(Self {
            http,
            client_id: s.client_id.to_owned(),
            client_secret: s.client_secret.to_owned(),
            authorization_endpoint: url("authorization endpoint", s.authorization_endpoint)?,
            token_endpoint: url("token endpoint", s.token_endpoint)?,
            scope: s.scope.map(str::to_owned),
            pkce: s.pkce,
            auth: s.auth,
        })
    }

    /// The authorization URL and what to keep until the browser comes back: a fresh
    /// `state` and (with PKCE) a verifier, 32 random bytes each. No nonce: there is no
    /// ID token to carry it.
    pub fn begin(&self, redirect_uri: &str, random: &mut impl RngCore) -> (String, PendingLogin) {
        let mut draw = || {
            let mut bytes = [0u8; RANDOM_BYTES];
            random.fill_bytes(&mut bytes);
            URL_SAFE_NO_PAD.encode(bytes)
        };
        let state = draw();
        let code_verifier = if self.pkce { draw() } else { String::new() };
        let mut url = self.authorization_endpoint.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("state", &state);
            if let Some(scope) = &self.scope {
                query.append_pair("scope", scope);
            }
            if self.pkce {
                let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(code_verifier.as_bytes()));
                query
                    .append_pair("code_challenge", &challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        let pending = PendingLogin {
            state,
            nonce: String::new(),
            code_verifier,
            redirect_uri: redirect_uri.to_owned(),
        };
        (url.into(), pending)
    }

    /// As [`crate::oidc::OidcClient::callback_error`].
    pub fn callback_error(
        &self,
        pending: &PendingLogin,
        returned_state: &str,
        error: &str,
    ) -> OidcError {
        crate::oidc::callback_error(pending, returned_state, error)
    }

    /// Checks `returned_state` and redeems `code` (with the PKCE verifier) for an
    /// access token.
    pub async fn finish(
        &self,
        pending: &PendingLogin,
        returned_state: &str,
        code: &str,
    ) -> Result<AccessToken, OidcError> {
        check_state(pending, returned_state)?;
        // Built in a block: the serializer is not `Send` (see oidc.rs).
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", &pending.redirect_uri);
            if !pending.code_verifier.is_empty() {
                form.append_pair("code_verifier", &pending.code_verifier);
            }
            if self.auth == ClientAuth::Form {
                form.append_pair("client_id", &self.client_id)
                    .append_pair("client_secret", &self.client_secret);
            }
            form.finish()
        };
        let basic = (self.auth == ClientAuth::Basic)
            .then_some((self.client_id.as_str(), self.client_secret.as_str()));
        let (status, body) =
            crate::oidc::post_token_form(&self.http, &self.token_endpoint, body, basic).await?;
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: Option<String>,
            token_type: Option<String>,
            // GitHub answers errors with 200 and this field.
            error: Option<String>,
        }
        let parsed = serde_json::from_slice::<TokenResponse>(&body);
        if let Ok(TokenResponse {
            error: Some(error), ..
        }) = &parsed
        {
            return Err(OidcError::Provider(error_code(error)));
        }
        if !status.is_success() {
            return Err(OidcError::Provider(format!("HTTP {}", status.as_u16())));
        }
        let parsed = parsed.map_err(|_| invalid("the token response is not the expected JSON"))?;
        if !parsed
            .token_type
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
        {
            return Err(invalid("the token response's token_type is not Bearer"));
        }
        parsed
            .access_token
            .filter(|t| !t.is_empty())
            .map(AccessToken)
            .ok_or_else(|| invalid("the token response has no access_token"))
    }
}

/// A provider's REST API, called with one access token.
pub struct Api {
    http: reqwest::Client,
    base: Url,
    token: AccessToken,
    accept: &'static str,
}

impl Api {
    /// `base` without a trailing `/`; paths are appended to it.
    pub fn new(
        http: reqwest::Client,
        base: &str,
        token: AccessToken,
        accept: &'static str,
    ) -> Result<Self, OidcError> {
        let base = url("API base", &format!("{}/", base.trim_end_matches('/')))?;
        Ok(Self {
            http,
            base,
            token,
            accept,
        })
    }

    fn join(&self, path: &str) -> Result<Url, OidcError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|_| invalid("API path is not a URL"))
    }

    /// A URL the API itself gave (a next page): only under the API base, where the
    /// token may go.
    fn same_api(&self, next: &str) -> Option<Url> {
        let next = Url::parse(next).ok()?;
        (next.origin() == self.base.origin() && next.path().starts_with(self.base.path()))
            .then_some(next)
    }

    async fn get_raw(&self, url: Url, what: &str) -> Result<(Vec<u8>, Option<String>), OidcError> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.token.0))
            .map_err(|_| invalid("the access token is unusable in a header"))?;
        auth.set_sensitive(true);
        let response = self
            .http
            .get(url)
            .header(ACCEPT, self.accept)
            // GitHub refuses requests without one.
            .header(USER_AGENT, "Portcullis")
            .header(AUTHORIZATION, auth)
            .send()
            .await
            .map_err(|e| unreachable(what, &e))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(OidcError::Unreachable(format!("{what}: HTTP {status}")));
        }
        if !status.is_success() {
            return Err(invalid(format!("{what}: HTTP {status}")));
        }
        let next = response
            .headers()
            .get(LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let body = read_limited(response, what).await?;
        Ok((body, next))
    }

    /// GET of one JSON document.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, what: &str) -> Result<T, OidcError> {
        let (body, _) = self.get_raw(self.join(path)?, what).await?;
        serde_json::from_slice(&body).map_err(|_| invalid(format!("{what}: not the expected JSON")))
    }

    /// GET of a JSON array paged by `Link: <…>; rel="next"` (GitHub, GitLab).
    pub async fn get_all<T: DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
    ) -> Result<Vec<T>, OidcError> {
        let mut all = Vec::new();
        let mut url = Some(self.join(path)?);
        for _ in 0..MAX_PAGES {
            let Some(current) = url.take() else { break };
            let (body, next) = self.get_raw(current, what).await?;
            let page: Vec<T> = serde_json::from_slice(&body)
                .map_err(|_| invalid(format!("{what}: not the expected JSON")))?;
            all.extend(page);
            url = next.as_deref().and_then(|n| self.same_api(n));
        }
        Ok(all)
    }

    /// GET of a Bitbucket paged list (`{"values": [...], "next": "<url>"}`).
    pub async fn get_values<T: DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
    ) -> Result<Vec<T>, OidcError> {
        #[derive(Deserialize)]
        struct Page<T> {
            values: Vec<T>,
            next: Option<String>,
        }
        let mut all = Vec::new();
        let mut url = Some(self.join(path)?);
        for _ in 0..MAX_PAGES {
            let Some(current) = url.take() else { break };
            let (body, _) = self.get_raw(current, what).await?;
            let page: Page<T> = serde_json::from_slice(&body)
                .map_err(|_| invalid(format!("{what}: not the expected JSON")))?;
            all.extend(page.values);
            url = page.next.as_deref().and_then(|n| self.same_api(n));
        }
        Ok(all)
    }
}

/// The `rel="next"` target of a `Link` header (RFC 8288).
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

/// The address that may link an account: the primary one when it is verified; else
/// the `fallback` (GitHub's public profile address), unverified. `emails` are
/// `(address, primary, verified)`.
pub fn primary_email<'a>(
    emails: impl IntoIterator<Item = (&'a str, bool, bool)>,
    fallback: Option<&str>,
) -> (Option<String>, bool) {
    let mut primary_unverified = None;
    for (email, primary, verified) in emails {
        if primary && verified {
            return (Some(email.to_owned()), true);
        }
        if primary {
            primary_unverified = Some(email.to_owned());
        }
    }
    let email = primary_unverified
        .or_else(|| fallback.map(str::to_owned))
        .filter(|e| !e.is_empty());
    (email, false)
}

/// GitHub and GitHub Enterprise Server.
pub mod github {
    use super::*;

    /// Portus's scopes (omniauth-github's `read:user,user:email,read:org`), space
    /// separated as GitHub documents.
    pub const SCOPE: &str = "read:user user:email read:org";
    pub const ACCEPT_JSON: &str = "application/vnd.github+json";

    /// The REST API of the web address `server`: `https://api.github.com` for
    /// github.com, `<server>/api/v3` for GitHub Enterprise Server.
    pub fn api_base(server: &str) -> String {
        let server = server.trim_end_matches('/');
        if server.eq_ignore_ascii_case("https://github.com") {
            "https://api.github.com".to_owned()
        } else {
            format!("{server}/api/v3")
        }
    }

    pub fn authorization_endpoint(server: &str) -> String {
        format!("{}/login/oauth/authorize", server.trim_end_matches('/'))
    }

    pub fn token_endpoint(server: &str) -> String {
        format!("{}/login/oauth/access_token", server.trim_end_matches('/'))
    }

    #[derive(Deserialize)]
    struct User {
        id: u64,
        login: String,
        name: Option<String>,
        email: Option<String>,
    }

    #[derive(Deserialize)]
    struct Email {
        email: String,
        #[serde(default)]
        primary: bool,
        #[serde(default)]
        verified: bool,
    }

    #[derive(Deserialize)]
    struct Org {
        login: String,
    }

    /// A team of `GET /user/teams`.
    #[derive(Debug, Clone, Deserialize)]
    pub struct Team {
        pub name: String,
        pub slug: String,
        pub organization: TeamOrg,
    }

    #[derive(Debug, Clone, Deserialize)]
    pub struct TeamOrg {
        pub login: String,
    }

    /// `GET /user` and `GET /user/emails`.
    pub async fn profile(api: &Api) -> Result<Profile, OidcError> {
        let user: User = api.get("user", "GitHub user").await?;
        let emails: Vec<Email> = api
            .get_all("user/emails?per_page=100", "GitHub emails")
            .await?;
        let (email, email_verified) = primary_email(
            emails
                .iter()
                .map(|e| (e.email.as_str(), e.primary, e.verified)),
            user.email.as_deref(),
        );
        Ok(Profile {
            subject: user.id.to_string(),
            username: Some(user.login),
            name: user.name,
            email,
            email_verified,
        })
    }

    /// The logins of `GET /user/orgs`.
    pub async fn organizations(api: &Api) -> Result<Vec<String>, OidcError> {
        let orgs: Vec<Org> = api
            .get_all("user/orgs?per_page=100", "GitHub organizations")
            .await?;
        Ok(orgs.into_iter().map(|o| o.login).collect())
    }

    /// `GET /user/teams`.
    pub async fn teams(api: &Api) -> Result<Vec<Team>, OidcError> {
        api.get_all("user/teams?per_page=100", "GitHub teams").await
    }

    /// Whether someone in `orgs` and `teams` may sign in: a member of `organization`
    /// when set, of a team named (or slugged) `team` in it when set. Logins and slugs
    /// compare case-insensitively, as GitHub treats them.
    pub fn admits(organization: &str, team: &str, orgs: &[String], teams: &[Team]) -> bool {
        let org_ok =
            organization.is_empty() || orgs.iter().any(|o| o.eq_ignore_ascii_case(organization));
        let team_ok = team.is_empty()
            || teams.iter().any(|t| {
                (t.name == team || t.slug.eq_ignore_ascii_case(team))
                    && (organization.is_empty()
                        || t.organization.login.eq_ignore_ascii_case(organization))
            });
        org_ok && team_ok
    }
}

/// GitLab.com and self-managed GitLab.
pub mod gitlab {
    use super::*;

    pub fn authorization_endpoint(server: &str) -> String {
        format!("{}/oauth/authorize", server.trim_end_matches('/'))
    }

    pub fn token_endpoint(server: &str) -> String {
        format!("{}/oauth/token", server.trim_end_matches('/'))
    }

    pub fn api_base(server: &str) -> String {
        format!("{}/api/v4", server.trim_end_matches('/'))
    }

    /// `read_user` reads the user; the group list needs `read_api`, asked for only
    /// when a `group` restricts sign-in.
    pub fn scope(group_restricted: bool) -> &'static str {
        if group_restricted {
            "read_user read_api"
        } else {
            "read_user"
        }
    }

    #[derive(Deserialize)]
    struct User {
        id: u64,
        username: String,
        name: Option<String>,
        email: Option<String>,
        confirmed_at: Option<String>,
    }

    #[derive(Deserialize)]
    struct Group {
        full_path: String,
    }

    /// `GET /user`: the address is verified when `confirmed_at` is set.
    pub async fn profile(api: &Api) -> Result<Profile, OidcError> {
        let user: User = api.get("user", "GitLab user").await?;
        let email = user.email.filter(|e| !e.is_empty());
        Ok(Profile {
            subject: user.id.to_string(),
            username: Some(user.username),
            name: user.name,
            email_verified: email.is_some() && user.confirmed_at.is_some(),
            email,
        })
    }

    /// The full paths of the groups the user is at least a Guest of
    /// (`GET /groups?min_access_level=10`).
    pub async fn groups(api: &Api) -> Result<Vec<String>, OidcError> {
        let groups: Vec<Group> = api
            .get_all("groups?min_access_level=10&per_page=100", "GitLab groups")
            .await?;
        Ok(groups.into_iter().map(|g| g.full_path).collect())
    }

    /// Whether `group` (a full path; GitLab paths are case-insensitive) is among them.
    pub fn admits(group: &str, groups: &[String]) -> bool {
        let group = group.trim_matches('/');
        group.is_empty() || groups.iter().any(|g| g.eq_ignore_ascii_case(group))
    }
}

/// Bitbucket Cloud.
pub mod bitbucket {
    use super::*;

    pub fn authorization_endpoint(server: &str) -> String {
        format!("{}/site/oauth2/authorize", server.trim_end_matches('/'))
    }

    pub fn token_endpoint(server: &str) -> String {
        format!("{}/site/oauth2/access_token", server.trim_end_matches('/'))
    }

    /// `https://api.bitbucket.org` for bitbucket.org; another server (a test fake:
    /// there is no self-hosted Bitbucket Cloud) serves it under `<server>/api`.
    pub fn api_base(server: &str) -> String {
        let server = server.trim_end_matches('/');
        if server.eq_ignore_ascii_case("https://bitbucket.org") {
            "https://api.bitbucket.org".to_owned()
        } else {
            format!("{server}/api")
        }
    }

    #[derive(Deserialize)]
    struct User {
        uuid: String,
        username: Option<String>,
        nickname: Option<String>,
        display_name: Option<String>,
    }

    #[derive(Deserialize)]
    struct Email {
        email: String,
        #[serde(default)]
        is_primary: bool,
        #[serde(default)]
        is_confirmed: bool,
    }

    #[derive(Deserialize)]
    struct Permission {
        workspace: Workspace,
    }

    #[derive(Deserialize)]
    struct Workspace {
        slug: String,
    }

    /// `GET /2.0/user` and `GET /2.0/user/emails`.
    pub async fn profile(api: &Api) -> Result<Profile, OidcError> {
        let user: User = api.get("2.0/user", "Bitbucket user").await?;
        let emails: Vec<Email> = api
            .get_values("2.0/user/emails?pagelen=100", "Bitbucket emails")
            .await?;
        let (email, email_verified) = primary_email(
            emails
                .iter()
                .map(|e| (e.email.as_str(), e.is_primary, e.is_confirmed)),
            None,
        );
        Ok(Profile {
            subject: user.uuid,
            username: user.username.or(user.nickname),
            name: user.display_name,
            email,
            email_verified,
        })
    }

    /// The slugs of the workspaces the user is a member of, filtered to `slug`
    /// (`GET /2.0/user/permissions/workspaces?q=workspace.slug="<slug>"`).
    pub async fn workspaces(api: &Api, slug: &str) -> Result<Vec<String>, OidcError> {
        // A slug is letters, digits, `-` and `_`; anything else cannot match and must
        // not end up in the query's string literal.
        if !slug
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        {
            return Ok(Vec::new());
        }
        let q: String =
            url::form_urlencoded::byte_serialize(format!("workspace.slug=\"{slug}\"").as_bytes())
                .collect();
        let permissions: Vec<Permission> = api
            .get_values(
                &format!("2.0/user/permissions/workspaces?q={q}&pagelen=100"),
                "Bitbucket workspaces",
            )
            .await?;
        Ok(permissions.into_iter().map(|p| p.workspace.slug).collect())
    }

    pub fn admits(team: &str, workspaces: &[String]) -> bool {
        team.is_empty() || workspaces.iter().any(|w| w.eq_ignore_ascii_case(team))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_primary_verified_email_is_the_one_that_links() {
        // (address, primary, verified) of the provider; the public profile address;
        // what links.
        type Emails<'a> = &'a [(&'a str, bool, bool)];
        type Links<'a> = (Option<&'a str>, bool);
        let cases: [(Emails, Option<&str>, Links); 6] = [
            (
                &[("a@x", false, true), ("b@x", true, true)],
                None,
                (Some("b@x"), true),
            ),
            (
                &[("a@x", true, false), ("b@x", false, true)],
                None,
                (Some("a@x"), false),
            ),
            (
                &[("a@x", false, true)],
                Some("pub@x"),
                (Some("pub@x"), false),
            ),
            (&[("a@x", false, true)], None, (None, false)),
            (&[], Some(""), (None, false)),
            (&[("a@x", true, true)], Some("pub@x"), (Some("a@x"), true)),
        ];
        for (emails, fallback, (email, verified)) in cases {
            assert_eq!(
                primary_email(emails.iter().copied(), fallback),
                (email.map(str::to_owned), verified),
                "{emails:?} {fallback:?}"
            );
        }
    }

    #[test]
    fn api_bases_follow_the_server() {
        let cases = [
            (
                github::api_base("https://github.com"),
                "https://api.github.com",
            ),
            (
                github::api_base("https://github.com/"),
                "https://api.github.com",
            ),
            (
                github::api_base("https://ghe.corp.example"),
                "https://ghe.corp.example/api/v3",
            ),
            (
                gitlab::api_base("https://gitlab.com/"),
                "https://gitlab.com/api/v4",
            ),
            (
                bitbucket::api_base("https://bitbucket.org"),
                "https://api.bitbucket.org",
            ),
            (
                bitbucket::api_base("http://127.0.0.1:9"),
                "http://127.0.0.1:9/api",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn github_restrictions() {
        let team = |org: &str, name: &str, slug: &str| github::Team {
            name: name.into(),
            slug: slug.into(),
            organization: github::TeamOrg { login: org.into() },
        };
        let orgs = vec!["Acme".to_owned(), "other".to_owned()];
        let teams = vec![
            team("acme", "Registry Admins", "registry-admins"),
            team("evil", "ops", "ops"),
        ];
        let cases = [
            ("", "", true),
            ("acme", "", true),
            ("ACME", "", true),
            ("nope", "", false),
            ("acme", "Registry Admins", true),
            ("acme", "registry-admins", true),
            ("acme", "ops", false),
            ("other", "registry-admins", false),
        ];
        for (org, t, want) in cases {
            assert_eq!(github::admits(org, t, &orgs, &teams), want, "{org} {t}");
        }
    }

    #[test]
    fn gitlab_and_bitbucket_restrictions() {
        let groups = vec!["Parent/child".to_owned(), "solo".to_owned()];
        let cases = [
            ("", true),
            ("parent/child", true),
            ("/solo/", true),
            ("parent", false),
            ("child", false),
        ];
        for (group, want) in cases {
            assert_eq!(gitlab::admits(group, &groups), want, "{group}");
        }
        let workspaces = vec!["acme".to_owned()];
        for (team, want) in [("", true), ("ACME", true), ("acme2", false)] {
            assert_eq!(bitbucket::admits(team, &workspaces), want, "{team}");
        }
    }

    #[test]
    fn next_links() {
        let cases = [
            (
                "<https://api/x?page=2>; rel=\"next\", <https://api/x?page=5>; rel=\"last\"",
                Some("https://api/x?page=2"),
            ),
            ("<https://api/x?page=1>; rel=\"prev\"", None),
            ("garbage", None),
        ];
        for (header, want) in cases {
            assert_eq!(next_link(header).as_deref(), want, "{header}");
        }
    }
}
