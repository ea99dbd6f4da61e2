//! A real OpenID Provider for the OpenID Connect tests: an axum server on
//! `127.0.0.1:0` that speaks the authorization code flow of OpenID Connect Core 1.0
//! (with PKCE, RFC 7636) and publishes its metadata as OpenID Connect Discovery 1.0
//! says, signing ID tokens with jsonwebtoken and a freshly generated RSA key (RS256).
//!
//! Endpoints, relative to [`OidcProvider::issuer`] (`http://127.0.0.1:<port>`):
//! - `GET /.well-known/openid-configuration`: the metadata.
//! - `GET /jwks`: the current public key, `kid` = its RFC 7638 thumbprint.
//! - `GET /authorize`: checks the request against the registered clients and renders a
//!   plain HTML sign-in form (`username`, `password`, hidden fields carrying the
//!   request, a submit button with id `sign-in`) a headless browser can fill in;
//!   `POST /authorize` checks the credentials and redirects (303) with `code` and
//!   `state`, or re-renders the form with an error (`<p id="error">`).
//! - `POST /token`: `authorization_code` only; client authentication by
//!   `client_secret_basic` or `client_secret_post` (or none, for a client registered
//!   with an empty secret); the code is single use, expires after [`CODE_LIFETIME`] and
//!   is bound to the client, the redirect URI and the PKCE challenge.
//! - `GET /userinfo`: the user's claims for a Bearer access token.
//!
//! The knobs ([`OidcProvider::sabotage_next_token`], [`OidcProvider::rotate_key`],
//! [`OidcProvider::set_discovery_issuer`], [`OidcProvider::set_outage`]) exist so the
//! relying party's checks can each be shown to refuse; [`OidcProvider::mint_id_token`]
//! signs arbitrary claims for RFC 8693 token exchange tests (a "CI job" presenting an
//! ID token with claims such as `repository` or `ref`).
//!
//! It is a test fake: secrets are compared with `==`, state lives in memory, and
//! nothing is meant to face a network other than loopback.

use anyhow::{Context, Result};
use axum::extract::{Form, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long an authorization code may be redeemed after it was issued.
pub const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// Lifetime of issued ID tokens and access tokens (`exp - iat`, `expires_in`).
pub const TOKEN_LIFETIME_SECS: i64 = 300;
/// The issuer a [`Sabotage::WrongIssuer`] token names.
pub const FOREIGN_ISSUER: &str = "https://issuer.invalid";
/// The audience a [`Sabotage::WrongAudience`] token names.
pub const FOREIGN_AUDIENCE: &str = "some-other-client";

/// The client registered at start (more with [`OidcProvider::add_client`]).
#[derive(Clone, Debug)]
pub struct ProviderOptions {
    pub client_id: String,
    /// Empty: a public client, which authenticates with `client_id` alone (PKCE is
    /// still required).
    pub client_secret: String,
    /// Compared exactly (OpenID Connect Core 1.0 §3.1.2.1).
    pub redirect_uris: Vec<String>,
}

/// A user who can sign in at the provider's form.
#[derive(Clone, Debug)]
pub struct TestOidcUser {
    pub subject: String,
    pub username: String,
    pub password: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
}

/// What is wrong with the ID token of the next token response (one response only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sabotage {
    /// `nonce` is not the one of the authorization request.
    WrongNonce,
    /// `aud` and `azp` are [`FOREIGN_AUDIENCE`].
    WrongAudience,
    /// Issued ten minutes ago, expired five minutes ago.
    Expired,
    /// `iss` is [`FOREIGN_ISSUER`].
    WrongIssuer,
    /// Signed by a key that is not published, under the published `kid`.
    ForeignSignature,
}

/// A running provider; stops when dropped.
pub struct OidcProvider {
    state: Arc<ProviderState>,
    task: tokio::task::JoinHandle<()>,
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

struct Grant {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    subject: String,
    auth_time: i64,
    expires_at: Instant,
}

struct ProviderState {
    issuer: String,
    clients: Mutex<Vec<ProviderOptions>>,
    users: Mutex<Vec<TestOidcUser>>,
    consent_denied: Mutex<HashSet<String>>,
    key: Mutex<Arc<SigningKey>>,
    codes: Mutex<HashMap<String, Grant>>,
    /// Access token -> subject.
    access_tokens: Mutex<HashMap<String, String>>,
    sabotage: Mutex<Option<Sabotage>>,
    discovery_issuer: Mutex<Option<String>>,
    outage: Mutex<Option<StatusCode>>,
    requests: Mutex<Vec<String>>,
    /// Username -> claims added to that user's ID tokens.
    extra_claims: Mutex<HashMap<String, Map<String, Value>>>,
}

impl OidcProvider {
    /// Binds `127.0.0.1:0`, then serves on the current tokio runtime: the provider
    /// answers as soon as this returns.
    pub async fn start(options: ProviderOptions) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the test OpenID Provider")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(ProviderState {
            issuer: format!("http://{addr}"),
            clients: Mutex::new(vec![options]),
            users: Mutex::default(),
            consent_denied: Mutex::default(),
            key: Mutex::new(Arc::new(new_signing_key()?)),
            codes: Mutex::default(),
            access_tokens: Mutex::default(),
            sabotage: Mutex::default(),
            discovery_issuer: Mutex::default(),
            outage: Mutex::default(),
            requests: Mutex::default(),
            extra_claims: Mutex::default(),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize_form).post(authorize_submit))
            .route("/token", axum::routing::post(token))
            .route("/userinfo", get(userinfo))
            .layer(from_fn_with_state(state.clone(), record_and_outage))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { state, task })
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// Registers one more client.
    pub fn add_client(&self, client: ProviderOptions) {
        lock(&self.state.clients).push(client);
    }

    pub fn add_user(&self, user: TestOidcUser) {
        lock(&self.state.users).push(user);
    }

    /// From now on `username`'s ID tokens carry `claims` (a JSON object) too, e.g.
    /// Google's `hd` (the Workspace domain). Replaces earlier extra claims.
    pub fn set_extra_claims(&self, username: &str, claims: Value) {
        let Value::Object(claims) = claims else {
            panic!("set_extra_claims: the claims must be a JSON object");
        };
        lock(&self.state.extra_claims).insert(username.to_owned(), claims);
    }

    /// From now on `username` "declines" at the form: the right password leads to an
    /// `error=access_denied` redirect.
    pub fn deny_consent(&self, username: &str) {
        lock(&self.state.consent_denied).insert(username.to_owned());
    }

    /// `claims` (a JSON object) signed with the current key under its `kid`; `iss` is
    /// the provider's, `iat` now and `exp` [`TOKEN_LIFETIME_SECS`] later, unless
    /// `claims` has them.
    pub fn mint_id_token(&self, claims: Value) -> String {
        let kid = self.current_kid();
        self.mint_id_token_with_kid(&kid, claims)
    }

    /// Like [`Self::mint_id_token`] but naming `kid` in the header (still signed with
    /// the current key): a token whose key the JWKS does not hold.
    pub fn mint_id_token_with_kid(&self, kid: &str, claims: Value) -> String {
        let Value::Object(mut claims) = claims else {
            panic!("mint_id_token: the claims must be a JSON object");
        };
        let now = unix_now();
        let defaults = [
            ("iss", json!(self.state.issuer)),
            ("iat", json!(now)),
            ("exp", json!(now + TOKEN_LIFETIME_SECS)),
        ];
        for (name, value) in defaults {
            claims.entry(name).or_insert(value);
        }
        let key = self.state.current_key();
        sign(&key.encoding, kid, &Value::Object(claims))
    }

    /// The `kid` of the published key.
    pub fn current_kid(&self) -> String {
        self.state.current_key().kid.clone()
    }

    /// Replaces the signing key; the JWKS publishes only the new one, so tokens signed
    /// before no longer verify. Returns the new `kid`.
    pub fn rotate_key(&self) -> String {
        let key = new_signing_key().expect("generating an RSA signing key");
        let kid = key.kid.clone();
        *lock(&self.state.key) = Arc::new(key);
        kid
    }

    /// Spoils the ID token of the next token response.
    pub fn sabotage_next_token(&self, sabotage: Sabotage) {
        *lock(&self.state.sabotage) = Some(sabotage);
    }

    /// The `issuer` the discovery document states (`None`: the real one), for the
    /// relying party's check of OpenID Connect Discovery 1.0 §4.3.
    pub fn set_discovery_issuer(&self, issuer: Option<&str>) {
        *lock(&self.state.discovery_issuer) = issuer.map(str::to_owned);
    }

    /// Every endpoint answers `status` with an empty body (`None`: back to normal).
    pub fn set_outage(&self, status: Option<u16>) {
        *lock(&self.state.outage) = status.and_then(|s| StatusCode::from_u16(s).ok());
    }

    /// Lets every outstanding authorization code expire now.
    pub fn expire_codes(&self) {
        let now = Instant::now();
        for grant in lock(&self.state.codes).values_mut() {
            grant.expires_at = now;
        }
    }

    /// Every request so far as `METHOD /path`, in order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state.requests).clone()
    }

    /// How often `/jwks` was fetched.
    pub fn jwks_fetches(&self) -> usize {
        lock(&self.state.requests)
            .iter()
            .filter(|r| *r == "GET /jwks")
            .count()
    }

    /// What a browser does at the provider: opens `authorization_url`, fills in the
    /// sign-in form as `username`, posts it, and returns where the provider sends the
    /// browser next (the client's redirect URI with `code` and `state`, or `error`).
    /// Redirects are not followed.
    pub async fn sign_in_like_a_browser(
        &self,
        authorization_url: &str,
        username: &str,
        password: &str,
    ) -> Result<String> {
        let post_to = format!("{}/authorize", self.issuer());
        submit_sign_in_form(authorization_url, &post_to, username, password).await
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ProviderState {
    fn current_key(&self) -> Arc<SigningKey> {
        lock(&self.key).clone()
    }

    fn client(&self, client_id: &str) -> Option<ProviderOptions> {
        lock(&self.clients)
            .iter()
            .find(|c| c.client_id == client_id)
            .cloned()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding a lock must not hide its failure behind
    // poison errors in every later request.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[expect(
    clippy::disallowed_methods,
    reason = "the provider is another party with its own real clock, like slapd; \
              the relying party under test takes its time as a parameter"
)]
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `bytes` random bytes, base64url without padding.
fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

fn new_signing_key() -> Result<SigningKey> {
    let pair =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).context("generating an RSA key")?;
    let encoding = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes())
        .context("loading the RSA key into jsonwebtoken")?;
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)
        .context("the public JWK of the RSA key")?;
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .context("the JWK thumbprint")?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok(SigningKey { kid, encoding, jwk })
}

fn sign(key: &EncodingKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).expect("signing with RS256")
}

/// BASE64URL(SHA256(ASCII(code_verifier))), RFC 7636 §4.2.
/// What a browser does at a test provider's sign-in page: opens `authorization_url`,
/// fills in `username` and `password` beside the page's hidden fields, posts the form to
/// `post_to`, and returns where the provider sends the browser next (the client's
/// redirect URI with `code` and `state`, or `error`). Redirects are not followed.
pub(crate) async fn submit_sign_in_form(
    authorization_url: &str,
    post_to: &str,
    username: &str,
    password: &str,
) -> Result<String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = http.get(authorization_url).send().await?;
    anyhow::ensure!(page.status() == 200, "the sign-in page: {}", page.status());
    let html = page.text().await?;
    anyhow::ensure!(html.contains("id=\"sign-in\""), "no sign-in form: {html}");
    let mut fields = hidden_fields(&html);
    fields.push(("username".into(), username.into()));
    fields.push(("password".into(), password.into()));
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&fields)
        .finish();
    let response = http
        .post(post_to)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 303,
        "the provider answered {} instead of a redirect back",
        response.status()
    );
    Ok(response
        .headers()
        .get("location")
        .context("a redirect without a location")?
        .to_str()?
        .to_owned())
}

/// The `name`/`value` pairs of the hidden inputs of the provider's sign-in page.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let attribute = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(
            tag[start..end]
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        )
    };
    html.split("<input")
        .skip(1)
        .filter_map(|rest| rest.split('>').next())
        .filter(|tag| tag.contains("type=\"hidden\""))
        .filter_map(|tag| Some((attribute(tag, "name")?, attribute(tag, "value")?)))
        .collect()
}

pub fn s256_challenge(code_verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(code_verifier.as_bytes()))
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

async fn record_and_outage(
    State(state): State<Arc<ProviderState>>,
    request: Request,
    next: Next,
) -> Response {
    lock(&state.requests).push(format!("{} {}", request.method(), request.uri().path()));
    let outage = *lock(&state.outage);
    match outage {
        Some(status) => status.into_response(),
        None => next.run(request).await,
    }
}

async fn discovery(State(state): State<Arc<ProviderState>>) -> Json<Value> {
    let issuer = &state.issuer;
    let stated = lock(&state.discovery_issuer)
        .clone()
        .unwrap_or_else(|| issuer.clone());
    Json(json!({
        "issuer": stated,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["openid", "email", "profile"],
        "grant_types_supported": ["authorization_code"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp",
            "email", "email_verified", "preferred_username", "name"
        ],
    }))
}

async fn jwks(State(state): State<Arc<ProviderState>>) -> Json<Value> {
    let key = state.current_key();
    Json(json!({ "keys": [key.jwk] }))
}

/// An authorization request that passed the checks.
struct AuthRequest {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
}

/// The parameters of an authorization request the form carries along.
const REQUEST_PARAMS: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
];

/// Checks an authorization request. An unknown client or redirect URI is answered with
/// a page, never a redirect (RFC 6749 §4.1.2.1: redirecting would make the provider
/// an open redirector); everything else is an error redirect to the client.
fn check_request(
    state: &ProviderState,
    params: &HashMap<String, String>,
) -> Result<AuthRequest, Box<Response>> {
    let param = |name: &str| params.get(name).map(String::as_str);
    let Some(client) = param("client_id").and_then(|id| state.client(id)) else {
        return Err(Box::new(error_page("unknown client_id")));
    };
    let Some(redirect_uri) = param("redirect_uri")
        .filter(|uri| client.redirect_uris.iter().any(|r| r == uri))
        .map(str::to_owned)
    else {
        return Err(Box::new(error_page(
            "redirect_uri is not registered for this client",
        )));
    };
    let state_param = param("state").map(str::to_owned);
    let refuse = |error: &str, description: &str| {
        Err(Box::new(error_redirect(
            &redirect_uri,
            error,
            description,
            state_param.as_deref(),
        )))
    };
    if param("response_type") != Some("code") {
        return refuse("unsupported_response_type", "only response_type=code");
    }
    if !param("scope").is_some_and(|s| s.split(' ').any(|s| s == "openid")) {
        return refuse("invalid_scope", "the scope must contain openid");
    }
    // RFC 7636 §4.3: a missing method means "plain", which is refused like "plain".
    if param("code_challenge_method") != Some("S256") {
        return refuse(
            "invalid_request",
            "PKCE with code_challenge_method=S256 is required",
        );
    }
    let challenge = param("code_challenge").unwrap_or_default();
    // An S256 challenge is a SHA-256 digest in base64url: 43 characters.
    if challenge.len() != 43 || URL_SAFE_NO_PAD.decode(challenge).is_err() {
        return refuse("invalid_request", "code_challenge is missing or malformed");
    }
    Ok(AuthRequest {
        client_id: client.client_id,
        redirect_uri,
        state: state_param,
        nonce: param("nonce").map(str::to_owned),
        code_challenge: challenge.to_owned(),
    })
}

async fn authorize_form(
    State(state): State<Arc<ProviderState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    match check_request(&state, &params) {
        Ok(_) => login_page(&params, None),
        Err(response) => *response,
    }
}

async fn authorize_submit(
    State(state): State<Arc<ProviderState>>,
    Form(params): Form<HashMap<String, String>>,
) -> Response {
    // The hidden fields are the request again: checked again, as a client (or anyone)
    // could post them directly.
    let request = match check_request(&state, &params) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let username = params.get("username").map(String::as_str).unwrap_or("");
    let password = params.get("password").map(String::as_str).unwrap_or("");
    let user = lock(&state.users)
        .iter()
        .find(|u| u.username == username && u.password == password && !password.is_empty())
        .cloned();
    let Some(user) = user else {
        return login_page(&params, Some("Invalid username or password."));
    };
    if lock(&state.consent_denied).contains(&user.username) {
        return error_redirect(
            &request.redirect_uri,
            "access_denied",
            "the user declined",
            request.state.as_deref(),
        );
    }
    let code = random_token(32);
    lock(&state.codes).insert(
        code.clone(),
        Grant {
            client_id: request.client_id,
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge,
            nonce: request.nonce,
            subject: user.subject,
            auth_time: unix_now(),
            expires_at: Instant::now() + CODE_LIFETIME,
        },
    );
    let mut query = vec![("code", code.as_str())];
    if let Some(s) = request.state.as_deref() {
        query.push(("state", s));
    }
    redirect_with(&request.redirect_uri, &query)
}

fn redirect_with(redirect_uri: &str, query: &[(&str, &str)]) -> Response {
    // The redirect URI was registered and matched exactly, so it parses; a test
    // registering garbage gets a page saying so.
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return error_page("the registered redirect_uri is not a URL");
    };
    url.query_pairs_mut().extend_pairs(query);
    Redirect::to(url.as_str()).into_response()
}

fn error_redirect(
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> Response {
    let mut query = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        query.push(("state", s));
    }
    redirect_with(redirect_uri, &query)
}

fn error_page(message: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html><head><title>Error</title></head><body>\
         <h1>Invalid request</h1><p id=\"error\">{}</p></body></html>\n",
        escape_html(message)
    );
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

fn login_page(params: &HashMap<String, String>, error: Option<&str>) -> Response {
    let hidden: String = REQUEST_PARAMS
        .iter()
        .filter_map(|name| params.get(*name).map(|value| (name, value)))
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
                escape_html(value)
            )
        })
        .collect();
    let error = error
        .map(|e| format!("<p id=\"error\" role=\"alert\">{}</p>\n", escape_html(e)))
        .unwrap_or_default();
    let body = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Sign in: test OpenID Provider</title></head>\n\
         <body><h1>Sign in</h1>\n{error}<form method=\"post\" action=\"/authorize\">\n{hidden}\
         <label>Username <input name=\"username\" id=\"username\" autocomplete=\"username\"></label>\n\
         <label>Password <input type=\"password\" name=\"password\" id=\"password\" autocomplete=\"current-password\"></label>\n\
         <button type=\"submit\" id=\"sign-in\">Sign in</button>\n</form></body></html>\n"
    );
    Html(body).into_response()
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An RFC 6749 §5.2 error response.
fn oauth_error(status: StatusCode, error: &str) -> Response {
    let mut response = (status, Json(json!({ "error": error }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"test-op\""),
        );
    }
    response
}

fn invalid_grant() -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant")
}

/// One `application/x-www-form-urlencoded` component, decoded (RFC 6749 §2.3.1 has
/// the client id and secret encoded so before they go into Basic authentication).
fn form_decode(component: &str) -> String {
    form_urlencoded::parse(component.as_bytes())
        .next()
        .map(|(k, v)| {
            if v.is_empty() {
                k.into_owned()
            } else {
                format!("{k}={v}")
            }
        })
        .unwrap_or_default()
}

/// The client authenticated by `client_secret_basic`, `client_secret_post` or (for a
/// client with an empty secret) by `client_id` alone. Two methods at once are refused
/// (RFC 6749 §2.3).
fn authenticate(
    state: &ProviderState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<ProviderOptions, (StatusCode, &'static str)> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    let body_id = form.get("client_id").cloned();
    let (client_id, secret) = match (basic, form.get("client_secret")) {
        (Some(_), Some(_)) => return Err((StatusCode::BAD_REQUEST, "invalid_request")),
        (Some(encoded), None) => {
            let decoded = STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                return Err((StatusCode::UNAUTHORIZED, "invalid_client"));
            };
            let id = form_decode(id);
            if body_id.as_ref().is_some_and(|b| *b != id) {
                return Err((StatusCode::BAD_REQUEST, "invalid_request"));
            }
            (id, form_decode(secret))
        }
        (None, secret) => (
            body_id.unwrap_or_default(),
            secret.cloned().unwrap_or_default(),
        ),
    };
    match state.client(&client_id) {
        Some(client) if client.client_secret == secret => Ok(client),
        _ => Err((StatusCode::UNAUTHORIZED, "invalid_client")),
    }
}

async fn token(
    State(state): State<Arc<ProviderState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let client = match authenticate(&state, &headers, &form) {
        Ok(client) => client,
        Err((status, error)) => return oauth_error(status, error),
    };
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    // Removed on the first attempt, whatever its outcome: a code is single use
    // (RFC 6749 §4.1.2), and a failed attempt is as suspicious as a second one.
    let grant = form
        .get("code")
        .and_then(|code| lock(&state.codes).remove(code));
    let Some(grant) = grant else {
        return invalid_grant();
    };
    let verifier = form.get("code_verifier").map(String::as_str).unwrap_or("");
    let refused = Instant::now() >= grant.expires_at
        || grant.client_id != client.client_id
        || form.get("redirect_uri") != Some(&grant.redirect_uri)
        || !is_valid_verifier(verifier)
        || s256_challenge(verifier) != grant.code_challenge;
    if refused {
        return invalid_grant();
    }
    let Some(user) = lock(&state.users)
        .iter()
        .find(|u| u.subject == grant.subject)
        .cloned()
    else {
        return invalid_grant();
    };
    let now = unix_now();
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(state.issuer));
    claims.insert("sub".into(), json!(user.subject));
    claims.insert("aud".into(), json!(client.client_id));
    claims.insert("exp".into(), json!(now + TOKEN_LIFETIME_SECS));
    claims.insert("iat".into(), json!(now));
    claims.insert("auth_time".into(), json!(grant.auth_time));
    claims.insert("azp".into(), json!(client.client_id));
    if let Some(nonce) = &grant.nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    claims.insert("email".into(), json!(user.email));
    claims.insert("email_verified".into(), json!(user.email_verified));
    claims.insert("preferred_username".into(), json!(user.username));
    claims.insert("name".into(), json!(user.name));
    if let Some(extra) = lock(&state.extra_claims).get(&user.username) {
        claims.extend(extra.clone());
    }

    let key = state.current_key();
    let mut signing = key.encoding.clone();
    let sabotage = lock(&state.sabotage).take();
    match sabotage {
        None => {}
        Some(Sabotage::WrongNonce) => {
            claims.insert("nonce".into(), json!("not-the-nonce-of-the-request"));
        }
        Some(Sabotage::WrongAudience) => {
            claims.insert("aud".into(), json!(FOREIGN_AUDIENCE));
            claims.insert("azp".into(), json!(FOREIGN_AUDIENCE));
        }
        Some(Sabotage::Expired) => {
            claims.insert("iat".into(), json!(now - 600));
            claims.insert("exp".into(), json!(now - 300));
        }
        Some(Sabotage::WrongIssuer) => {
            claims.insert("iss".into(), json!(FOREIGN_ISSUER));
        }
        Some(Sabotage::ForeignSignature) => match new_signing_key() {
            Ok(foreign) => signing = foreign.encoding,
            Err(_) => return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        },
    }
    let id_token = sign(&signing, &key.kid, &Value::Object(claims));
    let access_token = random_token(32);
    lock(&state.access_tokens).insert(access_token.clone(), user.subject.clone());
    let mut response = Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME_SECS,
        "id_token": id_token,
    }))
    .into_response();
    // RFC 6749 §5.1: token responses must not be cached.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn userinfo(State(state): State<Arc<ProviderState>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let subject = token.and_then(|t| lock(&state.access_tokens).get(t).cloned());
    let user = subject.and_then(|s| lock(&state.users).iter().find(|u| u.subject == s).cloned());
    let Some(user) = user else {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        return response;
    };
    Json(json!({
        "sub": user.subject,
        "email": user.email,
        "email_verified": user.email_verified,
        "preferred_username": user.username,
        "name": user.name,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    const CLIENT_ID: &str = "portcullis";
    const CLIENT_SECRET: &str = "s3cret:with&odd=chars";
    const REDIRECT: &str = "http://127.0.0.1:9/callback";
    const VERIFIER: &str = "verifier-verifier-verifier-verifier-verifier";

    async fn provider() -> OidcProvider {
        let op = OidcProvider::start(ProviderOptions {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            redirect_uris: vec![REDIRECT.into()],
        })
        .await
        .expect("provider starts");
        op.add_user(TestOidcUser {
            subject: "sub-alice".into(),
            username: "alice".into(),
            password: "alice-pw".into(),
            email: "alice@example.org".into(),
            email_verified: true,
            name: "Alice Example".into(),
        });
        op
    }

    fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    fn form(pairs: &[(&str, &str)]) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }

    fn request_params(challenge: &str) -> Vec<(String, String)> {
        [
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("scope", "openid email"),
            ("state", "st-1"),
            ("nonce", "n-1"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec()
    }

    /// The parameters of a good redemption of `code`.
    fn good_redemption(code: &str) -> [(&str, &str); 4] {
        [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ]
    }

    /// Query pairs of a redirect's Location.
    fn location(response: &reqwest::Response) -> HashMap<String, String> {
        let location = response
            .headers()
            .get(header::LOCATION)
            .expect("a Location")
            .to_str()
            .expect("ASCII");
        assert!(location.starts_with(REDIRECT), "{location}");
        url::Url::parse(location)
            .expect("a URL")
            .query_pairs()
            .into_owned()
            .collect()
    }

    async fn post_login(
        op: &OidcProvider,
        params: &[(String, String)],
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        let mut pairs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        pairs.push(("username", username));
        pairs.push(("password", password));
        http()
            .post(format!("{}/authorize", op.issuer()))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(&pairs))
            .send()
            .await
            .expect("POST /authorize")
    }

    /// A code for alice, issued for the challenge of [`VERIFIER`].
    async fn code(op: &OidcProvider) -> String {
        let response = post_login(
            op,
            &request_params(&s256_challenge(VERIFIER)),
            "alice",
            "alice-pw",
        )
        .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let query = location(&response);
        assert_eq!(query.get("state").map(String::as_str), Some("st-1"));
        query.get("code").expect("a code").clone()
    }

    async fn redeem(
        op: &OidcProvider,
        pairs: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> reqwest::Response {
        let mut request = http()
            .post(format!("{}/token", op.issuer()))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(pairs));
        if let Some((id, secret)) = basic {
            let encode =
                |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let credentials = STANDARD.encode(format!("{}:{}", encode(id), encode(secret)));
            request = request.header(header::AUTHORIZATION, format!("Basic {credentials}"));
        }
        request.send().await.expect("POST /token")
    }

    async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
        let status = response.status();
        let body: Value = response.json().await.expect("a JSON error");
        (
            status,
            body["error"].as_str().unwrap_or_default().to_owned(),
        )
    }

    #[tokio::test]
    async fn the_code_flow_issues_an_id_token_signed_by_the_published_key() {
        let op = provider().await;
        let mut url = url::Url::parse(&format!("{}/authorize", op.issuer())).expect("url");
        url.query_pairs_mut()
            .extend_pairs(request_params(&s256_challenge(VERIFIER)));
        let page = http().get(url).send().await.expect("GET /authorize");
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.expect("html");
        for needle in [
            "name=\"username\"",
            "name=\"password\"",
            "id=\"sign-in\"",
            "name=\"nonce\" value=\"n-1\"",
        ] {
            assert!(html.contains(needle), "{needle} in {html}");
        }

        let code = code(&op).await;
        let response = redeem(
            &op,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
            Some((CLIENT_ID, CLIENT_SECRET)),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response
                .headers()
                .get(header::CACHE_CONTROL)
                .map(|v| v.as_bytes()),
            Some(&b"no-store"[..])
        );
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["token_type"], "Bearer");
        let id_token = body["id_token"].as_str().expect("an ID token");

        let jwks: Value = http()
            .get(format!("{}/jwks", op.issuer()))
            .send()
            .await
            .expect("jwks")
            .json()
            .await
            .expect("JSON");
        let jwk: Jwk = serde_json::from_value(jwks["keys"][0].clone()).expect("a JWK");
        assert_eq!(
            jwk.common.key_id.as_deref(),
            Some(op.current_kid().as_str())
        );
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[CLIENT_ID]);
        validation.set_issuer(&[op.issuer()]);
        let claims = jsonwebtoken::decode::<Value>(
            id_token,
            &DecodingKey::from_jwk(&jwk).expect("key"),
            &validation,
        )
        .expect("the ID token verifies")
        .claims;
        assert_eq!(claims["sub"], "sub-alice");
        assert_eq!(claims["nonce"], "n-1");
        assert_eq!(claims["azp"], CLIENT_ID);
        assert_eq!(claims["email"], "alice@example.org");
        assert_eq!(claims["email_verified"], true);
        assert_eq!(claims["preferred_username"], "alice");
        assert_eq!(claims["name"], "Alice Example");

        let info: Value = http()
            .get(format!("{}/userinfo", op.issuer()))
            .bearer_auth(body["access_token"].as_str().expect("access token"))
            .send()
            .await
            .expect("userinfo")
            .json()
            .await
            .expect("JSON");
        assert_eq!(info["sub"], "sub-alice");
        let refused = http()
            .get(format!("{}/userinfo", op.issuer()))
            .bearer_auth("nope")
            .send()
            .await
            .expect("userinfo");
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

        let discovery: Value = http()
            .get(format!("{}/.well-known/openid-configuration", op.issuer()))
            .send()
            .await
            .expect("discovery")
            .json()
            .await
            .expect("JSON");
        assert_eq!(discovery["issuer"], op.issuer());
        assert_eq!(
            discovery["code_challenge_methods_supported"],
            json!(["S256"])
        );
    }

    #[tokio::test]
    async fn client_secret_post_is_accepted_too() {
        let op = provider().await;
        let code = code(&op).await;
        let response = redeem(
            &op,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ],
            None,
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn every_violation_of_the_code_binding_is_invalid_grant() {
        let op = provider().await;
        op.add_client(ProviderOptions {
            client_id: "other".into(),
            client_secret: "other-secret".into(),
            redirect_uris: vec![REDIRECT.into()],
        });
        let other_verifier = "another-verifier-another-verifier-another-ver";
        // (what differs from a good redemption, client, the parameters besides the code)
        type Case<'a> = (&'a str, (&'a str, &'a str), [(&'a str, &'a str); 2]);
        let cases: [Case; 5] = [
            (
                "another client",
                ("other", "other-secret"),
                [("redirect_uri", REDIRECT), ("code_verifier", VERIFIER)],
            ),
            (
                "another redirect_uri",
                (CLIENT_ID, CLIENT_SECRET),
                [
                    ("redirect_uri", "http://127.0.0.1:9/other"),
                    ("code_verifier", VERIFIER),
                ],
            ),
            (
                "the wrong verifier",
                (CLIENT_ID, CLIENT_SECRET),
                [
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", other_verifier),
                ],
            ),
            (
                "the challenge as verifier",
                (CLIENT_ID, CLIENT_SECRET),
                [
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", &s256_challenge(VERIFIER)),
                ],
            ),
            (
                "no verifier",
                (CLIENT_ID, CLIENT_SECRET),
                [("redirect_uri", REDIRECT), ("code_verifier", "")],
            ),
        ];
        for (what, client, params) in cases {
            let code = code(&op).await;
            let mut pairs = vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
            ];
            pairs.extend(params);
            let refused = error_of(redeem(&op, &pairs, Some(client)).await).await;
            assert_eq!(
                refused,
                (StatusCode::BAD_REQUEST, "invalid_grant".into()),
                "{what}"
            );
            // The failed attempt used the code up.
            pairs[2..].copy_from_slice(&[("redirect_uri", REDIRECT), ("code_verifier", VERIFIER)]);
            let again = error_of(redeem(&op, &pairs, Some((CLIENT_ID, CLIENT_SECRET))).await).await;
            assert_eq!(again.1, "invalid_grant", "{what}, then right");
        }

        // Replay: the second redemption of a good code is refused.
        let replayed = code(&op).await;
        let basic = Some((CLIENT_ID, CLIENT_SECRET));
        let first = redeem(&op, &good_redemption(&replayed), basic).await;
        assert_eq!(first.status(), StatusCode::OK);
        let replay = error_of(redeem(&op, &good_redemption(&replayed), basic).await).await;
        assert_eq!(replay, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
        // Expiry.
        let expiring = code(&op).await;
        op.expire_codes();
        let expired = error_of(redeem(&op, &good_redemption(&expiring), basic).await).await;
        assert_eq!(expired, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
        // A code never issued.
        let unknown = error_of(redeem(&op, &good_redemption("never-issued"), basic).await).await;
        assert_eq!(unknown, (StatusCode::BAD_REQUEST, "invalid_grant".into()));
    }

    #[tokio::test]
    async fn client_authentication_is_checked() {
        let op = provider().await;
        let code = code(&op).await;
        let base = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ];
        let wrong_basic = error_of(redeem(&op, &base, Some((CLIENT_ID, "wrong"))).await).await;
        assert_eq!(
            wrong_basic,
            (StatusCode::UNAUTHORIZED, "invalid_client".into())
        );
        let mut post = base.to_vec();
        post.extend([("client_id", CLIENT_ID), ("client_secret", "wrong")]);
        let wrong_post = error_of(redeem(&op, &post, None).await).await;
        assert_eq!(
            wrong_post,
            (StatusCode::UNAUTHORIZED, "invalid_client".into())
        );
        let none = error_of(redeem(&op, &base, None).await).await;
        assert_eq!(none, (StatusCode::UNAUTHORIZED, "invalid_client".into()));
        let mut both = base.to_vec();
        both.push(("client_secret", CLIENT_SECRET));
        let both = error_of(redeem(&op, &both, Some((CLIENT_ID, CLIENT_SECRET))).await).await;
        assert_eq!(both, (StatusCode::BAD_REQUEST, "invalid_request".into()));
        // Failed client authentication did not spend the code.
        assert_eq!(
            redeem(&op, &base, Some((CLIENT_ID, CLIENT_SECRET)))
                .await
                .status(),
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn the_authorization_request_requires_pkce_s256_and_a_registered_client() {
        let op = provider().await;
        let challenge = s256_challenge(VERIFIER);
        let with = |name: &str, value: Option<&str>| {
            let mut params = request_params(&challenge);
            params.retain(|(k, _)| k != name);
            if let Some(v) = value {
                params.push((name.to_owned(), v.to_owned()));
            }
            params
        };
        // Refusals the client hears about (an error redirect with the state).
        let redirected = [
            (
                with("code_challenge_method", Some("plain")),
                "invalid_request",
            ),
            (with("code_challenge_method", None), "invalid_request"),
            (with("code_challenge", None), "invalid_request"),
            (with("code_challenge", Some("short")), "invalid_request"),
            (
                with("response_type", Some("token")),
                "unsupported_response_type",
            ),
            (with("scope", Some("email profile")), "invalid_scope"),
        ];
        for (params, error) in redirected {
            let response = post_login(&op, &params, "alice", "alice-pw").await;
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "{params:?}");
            let query = location(&response);
            assert_eq!(
                query.get("error").map(String::as_str),
                Some(error),
                "{params:?}"
            );
            assert_eq!(query.get("state").map(String::as_str), Some("st-1"));
            assert!(!query.contains_key("code"));
        }
        // Refusals that must not redirect anywhere.
        for params in [
            with("client_id", Some("nobody")),
            with("redirect_uri", Some("http://127.0.0.1:9/callback/")),
        ] {
            let mut url = url::Url::parse(&format!("{}/authorize", op.issuer())).expect("url");
            url.query_pairs_mut().extend_pairs(&params);
            let response = http().get(url).send().await.expect("GET /authorize");
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{params:?}");
            assert!(response.headers().get(header::LOCATION).is_none());
        }
    }

    #[tokio::test]
    async fn a_wrong_password_shows_the_form_again_and_a_refusing_user_is_access_denied() {
        let op = provider().await;
        let params = request_params(&s256_challenge(VERIFIER));
        let wrong = post_login(&op, &params, "alice", "not-it").await;
        assert_eq!(wrong.status(), StatusCode::OK);
        let html = wrong.text().await.expect("html");
        assert!(
            html.contains("id=\"error\"") && html.contains("id=\"sign-in\""),
            "{html}"
        );

        op.deny_consent("alice");
        let denied = post_login(&op, &params, "alice", "alice-pw").await;
        assert_eq!(denied.status(), StatusCode::SEE_OTHER);
        let query = location(&denied);
        assert_eq!(
            query.get("error").map(String::as_str),
            Some("access_denied")
        );
        assert_eq!(query.get("state").map(String::as_str), Some("st-1"));
    }

    #[tokio::test]
    async fn rotation_publishes_only_the_new_key_and_minting_fills_in_the_issuer() {
        let op = provider().await;
        let before = op.current_kid();
        let token = op.mint_id_token(
            json!({ "sub": "repo:acme/app", "aud": "portcullis", "ref": "refs/heads/main" }),
        );
        let after = op.rotate_key();
        assert_ne!(before, after);
        let jwks: Value = http()
            .get(format!("{}/jwks", op.issuer()))
            .send()
            .await
            .expect("jwks")
            .json()
            .await
            .expect("JSON");
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .filter_map(|k| k["kid"].as_str())
            .collect();
        assert_eq!(kids, [after.as_str()]);
        assert_eq!(op.jwks_fetches(), 1);

        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.kid.as_deref(), Some(before.as_str()));
        let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&token)
            .expect("claims")
            .claims;
        assert_eq!(claims["iss"], op.issuer());
        assert_eq!(claims["ref"], "refs/heads/main");
        assert!(claims["exp"].as_i64() > claims["iat"].as_i64());
        let given = op.mint_id_token(json!({ "iss": "https://elsewhere.example" }));
        let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&given)
            .expect("claims")
            .claims;
        assert_eq!(claims["iss"], "https://elsewhere.example");
    }
}
