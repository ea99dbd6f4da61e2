//! The web UI: server-rendered pages (askama templates compiled into the binary) over
//! the same services and policy as the API. Every page works without JavaScript;
//! `assets/app.js` only enhances (copy buttons, confirmation prompts). Pages never
//! touch storage: they call the services, which enforce the policy again whatever a
//! page shows.
//!
//! [`app`] is the whole HTTP application: the registry endpoints and the API from
//! `portcullis-http`, the pages, the embedded assets, and the headers every response
//! carries (CSP without inline script or style, nosniff, frame denial, referrer policy).

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod assets;
mod format;
mod markdown;
mod pages;
mod render;
mod session;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use portcullis_service::Services;
use tower_http::compression::{CompressionLayer, CompressionLevel};

/// The whole application: API, registry endpoints, web UI.
pub fn app(services: Services) -> Router {
    Router::new()
        .merge(portcullis_http::routes())
        .merge(pages::routes())
        .merge(assets::routes())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(security_headers))
        // Pages are generated per request: the fastest level keeps a 5,000-tag page's
        // compression under a tenth of its render time and still shrinks it ~10×.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(services)
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

async fn security_headers(req: Request, next: Next) -> Response {
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
