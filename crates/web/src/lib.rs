//! The web UI: server-rendered pages (askama templates compiled into the binary) over
//! the same services and policy as the API. Every page works without JavaScript;
//! `assets/app.js` only enhances (copy buttons, confirmation prompts). Pages never
//! touch storage: they call the services, which enforce the policy again whatever a
//! page shows.
//!
//! [`app`] is the whole HTTP application: the registry endpoints and the API from
//! `portcullis-http`, the pages, the embedded assets, and the headers every response
//! carries (CSP without inline script or style, nosniff, frame denial, referrer policy,
//! HSTS under TLS), a request id (`X-Request-Id`: the client's, else a new UUID; in
//! every log line of the request and in the response) and the HTTP metrics.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod assets;
mod format;
mod markdown;
mod pages;
mod render;
mod session;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use portcullis_service::Services;
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// The whole application: API, registry endpoints, web UI.
pub fn app(services: Services) -> Router {
    Router::new()
        .merge(portcullis_http::routes())
        .merge(pages::routes())
        .merge(assets::routes())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn(http_metrics))
        .layer(middleware::from_fn_with_state(
            services.clone(),
            security_headers,
        ))
        // Pages are generated per request: the fastest level keeps a 5,000-tag page's
        // compression under a tenth of its render time and still shrinks it ~10×.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
        // The last layer is the outermost: the id is set first, then the span opens.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(services)
}

/// The span of one request: its id, method and path (never the query, which may
/// carry an account name or a token).
fn request_span(req: &Request) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
}

/// Counts and times requests per matched route (so labels stay few).
async fn http_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    portcullis_service::metrics::http_request(
        route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Paths the API and the registry own answer JSON; everything else the error page.
fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/v2" || path.starts_with("/v2/")
}

async fn fallback(req: Request) -> Response {
    if is_api_path(req.uri().path()) {
        portcullis_http::error::not_found().await.into_response()
    } else {
        render::PageError::from(portcullis_domain::Error::NotFound("Page")).into_response()
    }
}

async fn method_not_allowed(req: Request) -> Response {
    if is_api_path(req.uri().path()) {
        portcullis_http::error::method_not_allowed().await
    } else {
        render::error_page(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "This address does not take that kind of request.",
        )
    }
}

/// The content security policy: our own scripts, styles and images only; no inline
/// script or style, no framing, forms post only to us.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Browsers remember for a year to use HTTPS only (sent when Portcullis serves TLS).
const HSTS: &str = "max-age=31536000";

async fn security_headers(State(services): State<Services>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CSP);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "same-origin");
    if services.config().server.tls.enabled() {
        set(headers, header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths() {
        for (path, api) in [
            ("/api", true),
            ("/api/v1/users", true),
            ("/v2/", true),
            ("/v2/token", true),
            ("/apiary", false),
            ("/v2x", false),
            ("/", false),
            ("/namespaces", false),
        ] {
            assert_eq!(is_api_path(path), api, "{path}");
        }
    }
}
