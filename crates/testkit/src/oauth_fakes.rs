//! Fakes of GitHub's, GitLab's and Bitbucket Cloud's OAuth 2.0 sign-in and of the
//! parts of their REST APIs Portcullis reads, for the sign-in tests: axum servers on
//! `127.0.0.1:0`. The real services cannot run here (they are hosted products, and
//! the tests run offline), so these follow the documented APIs; a change on their side
//! is not caught by them.
//!
//! What each fake serves, relative to [`OAuthFake::server`] (the configured `server`):
//! - GitHub (<https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps>):
//!   `GET /login/oauth/authorize` (a sign-in form), `POST /login/oauth/access_token`
//!   (client id and secret in the form; errors as `200` with `{"error": …}`, as GitHub
//!   does; PKCE S256), and under `/api/v3` (GitHub Enterprise Server's layout):
//!   `GET /user` (<https://docs.github.com/en/rest/users/users#get-the-authenticated-user>),
//!   `GET /user/emails` (<https://docs.github.com/en/rest/users/emails>),
//!   `GET /user/orgs` (<https://docs.github.com/en/rest/orgs/orgs#list-organizations-for-the-authenticated-user>),
//!   `GET /user/teams` (<https://docs.github.com/en/rest/teams/teams#list-teams-for-the-authenticated-user>);
//!   API calls without a `User-Agent` are refused, as GitHub refuses them.
//! - GitLab (<https://docs.gitlab.com/api/oauth2/>): `GET /oauth/authorize`,
//!   `POST /oauth/token` (PKCE S256, client credentials in the form), and
//!   `GET /api/v4/user` (<https://docs.gitlab.com/api/users/#get-the-current-user>;
//!   `confirmed_at` null for an unconfirmed address), `GET /api/v4/groups`
//!   (<https://docs.gitlab.com/api/groups/#list-groups>; `min_access_level` honoured,
//!   `403 insufficient_scope` without the `read_api` scope).
//! - Bitbucket Cloud (<https://developer.atlassian.com/cloud/bitbucket/oauth-2/>):
//!   `GET /site/oauth2/authorize`, `POST /site/oauth2/access_token` (HTTP Basic client
//!   authentication; PKCE ignored, as Bitbucket does), and under `/api`:
//!   `GET /2.0/user`, `GET /2.0/user/emails`
//!   (<https://developer.atlassian.com/cloud/bitbucket/rest/api-group-users/>),
//!   `GET /2.0/user/permissions/workspaces?q=workspace.slug="…"`
//!   (<https://developer.atlassian.com/cloud/bitbucket/rest/api-group-workspaces/#api-user-permissions-workspaces-get>).
//!
//! All three check what the real ones check and the client could get wrong: a known
//! client, the registered redirect URI (exactly, at both steps), single-use codes that
//! expire after [`CODE_LIFETIME`], the PKCE verifier (GitHub, GitLab), client
//! authentication the provider's way, Bearer tokens on the API. The knobs: the users
//! and their memberships ([`FakeUser`], [`OAuthFake::update_user`]) and an outage
//! ([`OAuthFake::set_outage`]). Secrets are compared with `==`; state is in memory.

use crate::oidc::s256_challenge;
use anyhow::{Context, Result};
use axum::extract::{Form, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long an authorization code may be redeemed.
pub const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// Which provider a fake plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    GitHub,
    GitLab,
    Bitbucket,
}

impl Kind {
    fn authorize_path(self) -> &'static str {
        match self {
            Kind::GitHub => "/login/oauth/authorize",
            Kind::GitLab => "/oauth/authorize",
            Kind::Bitbucket => "/site/oauth2/authorize",
        }
    }
}

/// The OAuth client registered at the fake.
#[derive(Clone, Debug)]
pub struct FakeClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
}

/// A user of the fake provider.
#[derive(Clone, Debug)]
pub struct FakeUser {
    /// The stable id (Bitbucket's UUID is made from it).
    pub id: u64,
    pub username: String,
    pub password: String,
    pub name: String,
    /// The primary address.
    pub email: String,
    /// Whether the provider verified (GitHub), confirmed (GitLab, Bitbucket) it.
    pub email_verified: bool,
    /// GitHub organization logins, GitLab group full paths (Guest or more), or
    /// Bitbucket workspace slugs.
    pub memberships: Vec<String>,
    /// GitHub only: `(organization login, team name)`; the slug is the name in lower
    /// case with spaces as `-`.
    pub teams: Vec<(String, String)>,
}

impl FakeUser {
    /// A user whose password is `<username>-pw`, with a verified
    /// `<username>@example.com` and no memberships.
    pub fn new(id: u64, username: &str) -> Self {
        Self {
            id,
            username: username.into(),
            password: format!("{username}-pw"),
            name: format!("{username} Example"),
            email: format!("{username}@example.com"),
            email_verified: true,
            memberships: Vec::new(),
            teams: Vec::new(),
        }
    }

    /// Bitbucket's `uuid`, braces included as Bitbucket writes it.
    pub fn uuid(&self) -> String {
        format!("{{00000000-0000-4000-8000-{:012x}}}", self.id)
    }
}

struct Grant {
    redirect_uri: String,
    code_challenge: Option<String>,
    user_id: u64,
    scope: String,
    expires_at: Instant,
}

struct Token {
    user_id: u64,
    scope: String,
}

struct FakeState {
    kind: Kind,
    server: String,
    client: FakeClient,
    users: Mutex<Vec<FakeUser>>,
    codes: Mutex<HashMap<String, Grant>>,
    tokens: Mutex<HashMap<String, Token>>,
    outage: Mutex<Option<StatusCode>>,
    requests: Mutex<Vec<String>>,
}

/// A running fake; stops when dropped.
pub struct OAuthFake {
    state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl OAuthFake {
    /// Binds `127.0.0.1:0` and serves on the current runtime.
    pub async fn start(kind: Kind, client: FakeClient) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the fake OAuth provider")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(FakeState {
            kind,
            server: format!("http://{addr}"),
            client,
            users: Mutex::default(),
            codes: Mutex::default(),
            tokens: Mutex::default(),
            outage: Mutex::default(),
            requests: Mutex::default(),
        });
        let authorize = get(authorize_form).post(authorize_submit);
        let app = match kind {
            Kind::GitHub => Router::new()
                .route(kind.authorize_path(), authorize)
                .route("/login/oauth/access_token", post(token))
                .route("/api/v3/user", get(github_user))
                .route("/api/v3/user/emails", get(github_emails))
                .route("/api/v3/user/orgs", get(github_orgs))
                .route("/api/v3/user/teams", get(github_teams)),
            Kind::GitLab => Router::new()
                .route(kind.authorize_path(), authorize)
                .route("/oauth/token", post(token))
                .route("/api/v4/user", get(gitlab_user))
                .route("/api/v4/groups", get(gitlab_groups)),
            Kind::Bitbucket => Router::new()
                .route(kind.authorize_path(), authorize)
                .route("/site/oauth2/access_token", post(token))
                .route("/api/2.0/user", get(bitbucket_user))
                .route("/api/2.0/user/emails", get(bitbucket_emails))
                .route(
                    "/api/2.0/user/permissions/workspaces",
                    get(bitbucket_workspaces),
                ),
        };
        let app = app
            .layer(from_fn_with_state(state.clone(), record_and_outage))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { state, task })
    }

    /// `http://127.0.0.1:<port>`: the `server` to configure.
    pub fn server(&self) -> &str {
        &self.state.server
    }

    pub fn add_user(&self, user: FakeUser) {
        lock(&self.state.users).push(user);
    }

    /// Changes the user named `username` (memberships, email, ...).
    pub fn update_user(&self, username: &str, change: impl FnOnce(&mut FakeUser)) {
        if let Some(user) = lock(&self.state.users)
            .iter_mut()
            .find(|u| u.username == username)
        {
            change(user);
        }
    }

    /// Every endpoint answers `status` (`None`: back to normal).
    pub fn set_outage(&self, status: Option<u16>) {
        *lock(&self.state.outage) = status.and_then(|s| StatusCode::from_u16(s).ok());
    }

    /// Every request so far as `METHOD /path?query`, in order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state.requests).clone()
    }

    /// What a browser does at the provider: opens `authorization_url`, fills in the
    /// sign-in form, posts it, and returns where the provider sends the browser next
    /// (the redirect URI with `code` and `state`, or `error`).
    pub async fn sign_in_like_a_browser(
        &self,
        authorization_url: &str,
        username: &str,
        password: &str,
    ) -> Result<String> {
        let post_to = format!("{}{}", self.server(), self.state.kind.authorize_path());
        crate::oidc::submit_sign_in_form(authorization_url, &post_to, username, password).await
    }
}

impl Drop for OAuthFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test must not hide its failure behind poison errors.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn random_token() -> String {
    let mut buf = [0u8; 24];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

async fn record_and_outage(
    State(state): State<Arc<FakeState>>,
    request: Request,
    next: Next,
) -> Response {
    let uri = request.uri();
    let line = match uri.query() {
        Some(q) => format!("{} {}?{q}", request.method(), uri.path()),
        None => format!("{} {}", request.method(), uri.path()),
    };
    lock(&state.requests).push(line);
    let outage = *lock(&state.outage);
    match outage {
        Some(status) => status.into_response(),
        None => next.run(request).await,
    }
}

/// The authorization request's parameters the form carries along.
const REQUEST_PARAMS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// An unknown client or redirect URI gets a page (never a redirect: RFC 6749
/// §4.1.2.1); the rest an error redirect.
fn check_request(state: &FakeState, params: &HashMap<String, String>) -> Result<(), Box<Response>> {
    let param = |name: &str| params.get(name).map(String::as_str);
    if param("client_id") != Some(state.client.client_id.as_str()) {
        return Err(Box::new(page(StatusCode::BAD_REQUEST, "unknown client_id")));
    }
    if param("redirect_uri") != Some(state.client.redirect_uri.as_str()) {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            "redirect_uri does not match the registered callback",
        )));
    }
    if state.kind != Kind::GitHub && param("response_type") != Some("code") {
        return Err(Box::new(error_redirect(
            state,
            params,
            "unsupported_response_type",
        )));
    }
    // The fake insists on a state: the client under test must send one.
    if param("state").is_none_or(str::is_empty) {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            "the test fake requires state",
        )));
    }
    if state.kind != Kind::Bitbucket {
        let challenge = param("code_challenge").unwrap_or_default();
        if param("code_challenge_method") != Some("S256") || challenge.len() != 43 {
            return Err(Box::new(error_redirect(state, params, "invalid_request")));
        }
    }
    Ok(())
}

fn error_redirect(state: &FakeState, params: &HashMap<String, String>, error: &str) -> Response {
    let mut query = vec![("error", error)];
    if let Some(s) = params.get("state") {
        query.push(("state", s));
    }
    redirect_with(&state.client.redirect_uri, &query)
}

fn redirect_with(redirect_uri: &str, query: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return page(StatusCode::BAD_REQUEST, "the redirect_uri is not a URL");
    };
    url.query_pairs_mut().extend_pairs(query);
    Redirect::to(url.as_str()).into_response()
}

fn page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html><body><h1>Error</h1><p id=\"error\">{}</p></body></html>",
        escape(message)
    );
    (status, Html(body)).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn login_page(
    state: &FakeState,
    params: &HashMap<String, String>,
    error: Option<&str>,
) -> Response {
    let hidden: String = REQUEST_PARAMS
        .iter()
        .filter_map(|name| params.get(*name).map(|value| (name, value)))
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
                escape(value)
            )
        })
        .collect();
    let error = error
        .map(|e| format!("<p id=\"error\">{}</p>\n", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<!doctype html><html><head><title>Sign in: fake {:?}</title></head><body>\n{error}\
         <form method=\"post\" action=\"{}\">\n{hidden}\
         <input name=\"username\" id=\"username\"><input type=\"password\" name=\"password\" id=\"password\">\n\
         <button type=\"submit\" id=\"sign-in\">Sign in</button></form></body></html>\n",
        state.kind,
        state.kind.authorize_path()
    );
    Html(body).into_response()
}

async fn authorize_form(
    State(state): State<Arc<FakeState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    match check_request(&state, &params) {
        Ok(()) => login_page(&state, &params, None),
        Err(response) => *response,
    }
}

async fn authorize_submit(
    State(state): State<Arc<FakeState>>,
    Form(params): Form<HashMap<String, String>>,
) -> Response {
    if let Err(response) = check_request(&state, &params) {
        return *response;
    }
    let username = params.get("username").map(String::as_str).unwrap_or("");
    let password = params.get("password").map(String::as_str).unwrap_or("");
    let user = lock(&state.users)
        .iter()
        .find(|u| u.username == username && u.password == password && !password.is_empty())
        .cloned();
    let Some(user) = user else {
        return login_page(&state, &params, Some("Incorrect username or password."));
    };
    let code = random_token();
    lock(&state.codes).insert(
        code.clone(),
        Grant {
            redirect_uri: state.client.redirect_uri.clone(),
            // Bitbucket does not do PKCE: a challenge sent there is ignored.
            code_challenge: params
                .get("code_challenge")
                .cloned()
                .filter(|_| state.kind != Kind::Bitbucket),
            user_id: user.id,
            scope: params.get("scope").cloned().unwrap_or_default(),
            expires_at: Instant::now() + CODE_LIFETIME,
        },
    );
    let mut query = vec![("code", code.as_str())];
    if let Some(s) = params.get("state") {
        query.push(("state", s));
    }
    redirect_with(&state.client.redirect_uri, &query)
}

/// A token endpoint error: GitHub answers `200` with the error in the body.
fn token_error(state: &FakeState, status: StatusCode, error: &str) -> Response {
    let status = if state.kind == Kind::GitHub {
        StatusCode::OK
    } else {
        status
    };
    (status, Json(json!({ "error": error }))).into_response()
}

async fn token(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str);
    let (id, secret) = match state.kind {
        Kind::GitHub | Kind::GitLab => (
            field("client_id").unwrap_or_default().to_owned(),
            field("client_secret").unwrap_or_default().to_owned(),
        ),
        Kind::Bitbucket => {
            let decoded = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Basic "))
                .and_then(|b| STANDARD.decode(b.trim()).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            let (id, secret) = decoded.split_once(':').unwrap_or_default();
            let decode = |s: &str| {
                form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            (decode(id), decode(secret))
        }
    };
    if id != state.client.client_id || secret != state.client.client_secret {
        return token_error(&state, StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if state.kind != Kind::GitHub && field("grant_type") != Some("authorization_code") {
        return token_error(&state, StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    // Single use, whatever the outcome.
    let grant = field("code").and_then(|code| lock(&state.codes).remove(code));
    let bad_code = if state.kind == Kind::GitHub {
        "bad_verification_code"
    } else {
        "invalid_grant"
    };
    let Some(grant) = grant else {
        return token_error(&state, StatusCode::BAD_REQUEST, bad_code);
    };
    let verifier_ok = match &grant.code_challenge {
        Some(challenge) => field("code_verifier").is_some_and(|v| s256_challenge(v) == *challenge),
        None => true,
    };
    if Instant::now() >= grant.expires_at
        || field("redirect_uri") != Some(grant.redirect_uri.as_str())
        || !verifier_ok
    {
        return token_error(&state, StatusCode::BAD_REQUEST, bad_code);
    }
    let access_token = random_token();
    lock(&state.tokens).insert(
        access_token.clone(),
        Token {
            user_id: grant.user_id,
            scope: grant.scope.clone(),
        },
    );
    let mut response = Json(json!({
        "access_token": access_token,
        "token_type": "bearer",
        "scope": grant.scope,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The user and the token's scope for the request's Bearer token, else the 401 (or,
/// for GitHub without a `User-Agent`, the 403) to answer.
fn bearer(state: &FakeState, headers: &HeaderMap) -> Result<(FakeUser, String), Box<Response>> {
    if state.kind == Kind::GitHub && !headers.contains_key(header::USER_AGENT) {
        return Err(Box::new((StatusCode::FORBIDDEN, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header").into_response()));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| {
            lock(&state.tokens)
                .get(t)
                .map(|t| (t.user_id, t.scope.clone()))
        });
    let found = token.and_then(|(id, scope)| {
        lock(&state.users)
            .iter()
            .find(|u| u.id == id)
            .cloned()
            .map(|u| (u, scope))
    });
    found.ok_or_else(|| {
        Box::new(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"message": "Bad credentials"})),
            )
                .into_response(),
        )
    })
}

macro_rules! authed {
    ($state:expr, $headers:expr) => {
        match bearer(&$state, &$headers) {
            Ok(found) => found,
            Err(response) => return *response,
        }
    };
}

async fn github_user(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    let (user, _) = authed!(state, headers);
    Json(json!({
        "id": user.id,
        "login": user.username,
        "name": user.name,
        // The public profile address: none is set.
        "email": null,
    }))
    .into_response()
}

async fn github_emails(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    let (user, _) = authed!(state, headers);
    // The noreply address first: verified but not primary, so not the one to link.
    Json(json!([
        {"email": format!("{}@users.noreply.github.com", user.id), "primary": false, "verified": true, "visibility": null},
        {"email": user.email, "primary": true, "verified": user.email_verified, "visibility": "private"},
    ]))
    .into_response()
}

async fn github_orgs(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    let (user, _) = authed!(state, headers);
    let orgs: Vec<Value> = user
        .memberships
        .iter()
        .enumerate()
        .map(|(i, login)| json!({"login": login, "id": 1000 + i}))
        .collect();
    Json(orgs).into_response()
}

async fn github_teams(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    let (user, _) = authed!(state, headers);
    let teams: Vec<Value> = user
        .teams
        .iter()
        .map(|(org, name)| {
            json!({
                "name": name,
                "slug": name.to_lowercase().replace(' ', "-"),
                "organization": {"login": org},
            })
        })
        .collect();
    Json(teams).into_response()
}

async fn gitlab_user(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    let (user, _) = authed!(state, headers);
    Json(json!({
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "state": "active",
        "email": user.email,
        "confirmed_at": user.email_verified.then_some("2024-01-01T00:00:00.000Z"),
    }))
    .into_response()
}

async fn gitlab_groups(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (user, scope) = authed!(state, headers);
    if !scope.split(' ').any(|s| s == "read_api" || s == "api") {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "insufficient_scope"})),
        )
            .into_response();
    }
    // Without `min_access_level` GitLab.com lists every public group: the fake lists
    // one the user is not in, so a client that forgot it would be caught.
    let mut groups: Vec<Value> = user
        .memberships
        .iter()
        .map(|path| json!({"full_path": path, "path": path.rsplit('/').next(), "name": path}))
        .collect();
    if !params.contains_key("min_access_level") {
        groups.push(json!({"full_path": "everyone-public", "path": "everyone-public", "name": "everyone-public"}));
    }
    Json(groups).into_response()
}

async fn bitbucket_user(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    let (user, _) = authed!(state, headers);
    Json(json!({
        "type": "user",
        "uuid": user.uuid(),
        "account_id": format!("5b{:010}", user.id),
        "username": user.username,
        "nickname": user.username,
        "display_name": user.name,
    }))
    .into_response()
}

async fn bitbucket_emails(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    let (user, _) = authed!(state, headers);
    Json(json!({
        "pagelen": 10, "page": 1, "size": 1,
        "values": [{"type": "email", "email": user.email, "is_primary": true, "is_confirmed": user.email_verified}],
    }))
    .into_response()
}

async fn bitbucket_workspaces(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (user, _) = authed!(state, headers);
    // Only the filter the client sends is understood: `workspace.slug="<slug>"`.
    let wanted = params.get("q").and_then(|q| {
        q.strip_prefix("workspace.slug=\"")
            .and_then(|rest| rest.strip_suffix('"'))
            .map(str::to_owned)
    });
    let values: Vec<Value> = user
        .memberships
        .iter()
        .filter(|slug| wanted.as_ref().is_none_or(|w| w == *slug))
        .map(|slug| {
            json!({
                "type": "workspace_membership",
                "permission": "member",
                "workspace": {"type": "workspace", "slug": slug, "name": slug},
            })
        })
        .collect();
    Json(json!({"pagelen": 100, "page": 1, "size": values.len(), "values": values})).into_response()
}
