//! What the registry and its clients talk to: the token endpoint (GET as Portus, plus
//! the OAuth2 POST form Portus lacked), Portus's `/v2/` ping and the notification sink.

use crate::error::ApiError;
use crate::extract::{ClientAddr, authenticate};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use portcullis_domain::Error;
use portcullis_domain::scope::parse_scopes;
use portcullis_domain::time::Timestamp;
use portcullis_registry::notifications::is_supported_media_type;
use portcullis_service::auth::AuthFailure;
use portcullis_service::exchange;
use portcullis_service::secrets::constant_time_eq;
use portcullis_service::token::{IssuedToken, TokenRequest};
use portcullis_service::{Authenticated, Services};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<Services> {
    Router::new()
        .route(
            "/v2/token",
            get(token_get)
                .post(token_post)
                .layer(axum::middleware::from_fn(token_metrics)),
        )
        .route("/v2/", get(ping))
        .route("/v2", get(ping))
        .route("/v2/webhooks/events", post(notification_sink))
}

/// Which credential a token request was answered for, set on the response by the
/// handlers once the caller is known; refusals before that are `unknown`.
#[derive(Debug, Clone, Copy)]
struct Credential(&'static str);

fn credential(who: Option<&Authenticated>) -> Credential {
    use portcullis_service::AuthMethod;
    Credential(match who.map(|w| w.method) {
        None => "anonymous",
        Some(AuthMethod::Password) => "password",
        Some(AuthMethod::Session { .. }) => "session",
        Some(AuthMethod::ApplicationToken {
            pull_only: true, ..
        }) => "pull_only_token",
        Some(AuthMethod::ApplicationToken { .. }) => "application_token",
        Some(AuthMethod::RefreshToken { .. }) => "refresh_token",
        Some(AuthMethod::TokenExchange { .. }) => "token_exchange",
    })
}

fn with_credential(mut response: Response, credential: Credential) -> Response {
    response.extensions_mut().insert(credential);
    response
}

/// Counts and times every token request by result and credential kind.
async fn token_metrics(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let kind = response
        .extensions()
        .get::<Credential>()
        .map_or("unknown", |c| c.0);
    let result = match response.status() {
        s if s.is_success() => "issued",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "refused",
        s if s.is_client_error() => "bad_request",
        _ => "error",
    };
    portcullis_service::metrics::token_request(kind, result, started.elapsed());
    response
}

/// The registry's error body, which docker and containers/image print.
fn registry_unauthorized(message: &str) -> Response {
    let body = json!({"errors": [{"code": "UNAUTHORIZED", "message": message, "detail": null}]});
    let mut r = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"Portcullis\""),
    );
    r
}

fn failure_response(e: Error) -> Response {
    match e {
        Error::Unauthenticated => registry_unauthorized("authentication required"),
        other => ApiError(other).into_response(),
    }
}

fn token_body(t: &IssuedToken, oauth: bool) -> Value {
    let mut body = json!({
        "token": t.token,
        "access_token": t.token,
        "expires_in": t.expires_in,
        // Whole seconds, as registries and Portus wrote it.
        "issued_at": crate::rfc3339(Timestamp::from_secs(t.issued_at.as_secs())),
    });
    if oauth {
        body["scope"] = json!(t.scope);
    }
    if let Some(rt) = &t.refresh_token {
        body["refresh_token"] = json!(rt);
    }
    body
}

fn is_true(v: &str) -> bool {
    matches!(v, "true" | "1" | "yes")
}

/// `GET /v2/token?service=…&scope=…[&scope=…]&account=…&offline_token=true&client_id=…`
/// with optional HTTP Basic credentials. Scopes are read from the raw query because
/// they repeat.
async fn token_get(
    State(services): State<Services>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let mut req = TokenRequest::default();
    let mut scope_values = Vec::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "service" => req.service = v.into_owned(),
            "scope" => scope_values.push(v.into_owned()),
            "offline_token" => req.offline = is_true(&v),
            "client_id" => req.client_id = v.into_owned(),
            // `account` is only what the client claims; `sub` comes from the credentials.
            _ => {}
        }
    }
    let who = match authenticate(&services, &headers, &client).await {
        Ok(w) => w,
        Err(e) => return failure_response(e),
    };
    if !scope_values.is_empty() {
        match parse_scopes(scope_values.iter().map(String::as_str)) {
            Ok(s) => req.scopes = Some(s),
            // Portus answers unknown or malformed scopes with 401.
            Err(e) => return registry_unauthorized(&e.to_string()),
        }
    }
    let label = credential(who.as_ref());
    let response = match services.tokens.issue_token(who.as_ref(), &req, None).await {
        Ok(t) => Json(token_body(&t, false)).into_response(),
        Err(e) => failure_response(e),
    };
    with_credential(response, label)
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    service: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    access_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    // RFC 8693 §2.1, token exchange.
    subject_token: Option<String>,
    subject_token_type: Option<String>,
    actor_token: Option<String>,
    actor_token_type: Option<String>,
    requested_token_type: Option<String>,
    audience: Option<String>,
    resource: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `POST /v2/token`, the OAuth2 form (`grant_type=password` or `refresh_token`) that
/// docker uses with identity tokens and containerd with configured secrets. Bodies may
/// be chunked (containers/image sends no Content-Length).
async fn token_post(
    State(services): State<Services>,
    ClientAddr(client): ClientAddr,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected an application/x-www-form-urlencoded body",
        );
    };
    if form.grant_type.as_deref() == Some(exchange::GRANT_TYPE) {
        return token_exchange(&services, &client, form).await;
    }
    let service = form.service.clone().unwrap_or_default();
    let scopes = match form.scope.as_deref().filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(s) => match parse_scopes([s]) {
            Ok(v) => Some(v),
            Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", &e.to_string()),
        },
    };
    let mut req = TokenRequest {
        service: service.clone(),
        scopes,
        offline: form.access_type.as_deref() == Some("offline"),
        client_id: form.client_id.clone().unwrap_or_default(),
    };
    let (who, existing): (Result<Authenticated, AuthFailure>, Option<String>) =
        match form.grant_type.as_deref() {
            Some("password") => {
                let (Some(u), Some(p)) = (&form.username, &form.password) else {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "username and password are required",
                    );
                };
                (services.auth.basic(u, p, &client).await, None)
            }
            Some("refresh_token") => {
                let Some(rt) = &form.refresh_token else {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "refresh_token is required",
                    );
                };
                // The refresh grant returns the same refresh token.
                req.offline = false;
                (
                    services.auth.refresh_token(rt, &service).await,
                    Some(rt.clone()),
                )
            }
            Some(other) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    &format!("grant_type {other:?} is not supported"),
                );
            }
            None => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "grant_type is required",
                );
            }
        };
    let who = match who {
        Ok(w) => w,
        Err(AuthFailure::Invalid) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "invalid credentials",
            );
        }
        // Rate limits (429) and outages (503) keep their own status codes.
        Err(other) => return ApiError(other.into()).into_response(),
    };
    match services
        .tokens
        .issue_token(Some(&who), &req, existing)
        .await
    {
        Ok(t) => with_credential(
            Json(token_body(&t, true)).into_response(),
            credential(Some(&who)),
        ),
        Err(e) => with_credential(ApiError(e).into_response(), credential(Some(&who))),
    }
}

/// `POST /v2/token` with `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`
/// (RFC 8693): a CI job's ID token (`subject_token`) for a registry token of the bot a
/// trust rule maps it to. Answers as RFC 8693 §2.2.1 plus docker's `token` and
/// `issued_at`; errors as RFC 6749 §5.2, every refused token alike (`invalid_grant`,
/// the reason only in the log); an issuer that cannot be asked is a 503.
async fn token_exchange(services: &Services, client: &str, form: TokenForm) -> Response {
    let bad_request = |error: &str, description: &str| {
        with_credential(
            oauth_error(StatusCode::BAD_REQUEST, error, description),
            Credential("token_exchange"),
        )
    };
    if !services.exchange.enabled() {
        return bad_request(
            "unsupported_grant_type",
            "token exchange is not enabled on this server",
        );
    }
    let Some(subject_token) = form.subject_token.filter(|t| !t.is_empty()) else {
        return bad_request("invalid_request", "subject_token is required");
    };
    match form.subject_token_type.as_deref() {
        Some(exchange::ID_TOKEN_TYPE | exchange::JWT_TOKEN_TYPE) => {}
        Some(_) => {
            return bad_request(
                "invalid_request",
                "subject_token_type must be urn:ietf:params:oauth:token-type:id_token or urn:ietf:params:oauth:token-type:jwt",
            );
        }
        None => return bad_request("invalid_request", "subject_token_type is required"),
    }
    // Delegation (an actor acting for the subject) is not offered.
    if form.actor_token.is_some() || form.actor_token_type.is_some() {
        return bad_request("invalid_request", "actor_token is not supported");
    }
    if form
        .requested_token_type
        .as_deref()
        .is_some_and(|t| t != exchange::ACCESS_TOKEN_TYPE)
    {
        return bad_request(
            "invalid_request",
            "requested_token_type must be urn:ietf:params:oauth:token-type:access_token",
        );
    }
    // The token is for a registry, named by `service` (docker's parameter) or by RFC
    // 8693's `audience`; both given must agree. `resource` (a URI) names nothing here.
    if form.resource.is_some() {
        return bad_request(
            "invalid_target",
            "resource is not supported; name the registry with service or audience",
        );
    }
    let service = match (form.service, form.audience) {
        (Some(s), Some(a)) if s != a => {
            return bad_request(
                "invalid_target",
                "audience and service name different registries",
            );
        }
        (Some(s), _) | (None, Some(s)) => s,
        (None, None) => {
            return bad_request("invalid_request", "service (or audience) is required");
        }
    };
    let scopes = match form.scope.as_deref().filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(s) => match parse_scopes([s]) {
            Ok(v) => Some(v),
            Err(e) => return bad_request("invalid_scope", &e.to_string()),
        },
    };
    let req = exchange::ExchangeRequest {
        subject_token,
        service,
        scopes,
    };
    let response = match services.exchange.exchange(&req, client).await {
        Ok(t) => {
            let body = json!({
                "access_token": t.token,
                "issued_token_type": exchange::ACCESS_TOKEN_TYPE,
                "token_type": "Bearer",
                "expires_in": t.expires_in,
                "scope": t.scope,
                // docker and containers/image read these.
                "token": t.token,
                "issued_at": crate::rfc3339(Timestamp::from_secs(t.issued_at.as_secs())),
            });
            // RFC 6749 §5.1: token responses are not cached.
            let mut r = Json(body).into_response();
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            r
        }
        Err(Error::Unauthenticated) => {
            return bad_request("invalid_grant", "the subject token was not accepted");
        }
        Err(Error::Disabled(_)) => {
            return bad_request(
                "unsupported_grant_type",
                "token exchange is not enabled on this server",
            );
        }
        // Rate limits (429) and outages of the issuer or database (503).
        Err(e) => ApiError(e).into_response(),
    };
    with_credential(response, Credential("token_exchange"))
}

/// Portus's `GET /v2/`: 200 when the Basic credentials are valid, else 401.
async fn ping(
    State(services): State<Services>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
) -> Response {
    match authenticate(&services, &headers, &client).await {
        Ok(Some(_)) => Json(json!({})).into_response(),
        Ok(None) => registry_unauthorized("authentication required"),
        Err(e) => failure_response(e),
    }
}

/// `POST /v2/webhooks/events`: registry notifications. The registry authenticates
/// with the `Authorization: Bearer <notifications.secret>` header that
/// `portcullis registry-config` puts in its endpoint configuration (Portus accepted
/// events from anyone). The events are stored before the 202 goes out (persist, then
/// acknowledge); the worker processes them.
async fn notification_sink(
    State(services): State<Services>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let secret = &services.config().notifications.secret;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().as_bytes().to_vec())
        .unwrap_or_default();
    // An empty secret (never the case after start-up) refuses everything.
    if secret.is_empty() || !constant_time_eq(&presented, secret.as_bytes()) {
        return ApiError(Error::Unauthenticated).into_response();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !is_supported_media_type(content_type) {
        return ApiError(Error::Malformed(format!(
            "unsupported content type {:?}: expected application/vnd.docker.distribution.events.v1+json or v2+json",
            content_type.unwrap_or_default()
        )))
        .into_response();
    }
    match services.inventory.receive(&body).await {
        Ok(stored) => {
            tracing::debug!(stored, "registry notification stored");
            StatusCode::ACCEPTED.into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}
