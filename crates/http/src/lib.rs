//! HTTP interface: the registry-facing endpoints (`/v2/token`, `/v2/`, the notification
//! sink) and the Portus-compatible REST API under `/api`. Handlers translate HTTP to
//! service calls and back; every rule lives in the services and the domain policy.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api;
pub mod client_addr;
pub mod error;
pub mod extract;
pub mod probes;
pub mod registry_endpoints;

use axum::Router;
use portcullis_service::Services;
use tower_http::limit::RequestBodyLimitLayer;

/// Largest request body accepted anywhere (notification envelopes are far smaller).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The registry endpoints and the API, without a fallback: the web UI crate merges
/// them with its pages.
pub fn routes() -> Router<Services> {
    let (api, _) = api::router().split_for_parts();
    Router::new()
        .merge(registry_endpoints::router())
        .merge(probes::router())
        .merge(api)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
}

/// The registry endpoints and the API alone, answering JSON for unknown paths.
pub fn router(services: Services) -> Router {
    routes()
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(services)
}

/// A timestamp as RFC 3339 in UTC, the form of every time in the API and token bodies.
pub fn rfc3339(ts: portcullis_domain::time::Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts.0) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The OpenAPI document, generated from the same router the server runs.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api::router().split_for_parts().1
}
