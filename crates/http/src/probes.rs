//! Probes for load balancers and orchestrators, outside the Portus API:
//! `/livez` answers while the process serves requests (it touches nothing), `/readyz`
//! while it can also do its work: the database answers and is migrated. Registries
//! do not count: a registry outage must not take Portcullis out of a load balancer
//! (`/api/v1/health` reports them). `/metrics` is Prometheus's text format.

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use portcullis_service::Services;
use portcullis_service::health::DatabaseHealth;
use std::net::SocketAddr;

pub fn router() -> Router<Services> {
    Router::new()
        .route("/livez", get(live))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

/// `GET /metrics` for peers in `metrics.allowed_networks` that connect directly; a
/// 404 (as if there were no such page) for everybody else. A request that came
/// through a reverse proxy (it carries `X-Forwarded-For` or `Forwarded`) is refused
/// whatever the proxy's address: the proxy usually sits in a private network, and
/// its users must not read the metrics through it. Scrapers connect directly.
async fn metrics(
    State(s): State<Services>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let proxied =
        headers.contains_key("x-forwarded-for") || headers.contains_key(header::FORWARDED);
    if proxied || !s.config().metrics.allows(peer.ip()) {
        return crate::error::not_found().await.into_response();
    }
    match s.health.metrics().await {
        Some(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics unavailable: another metrics recorder is installed in this process\n",
        )
            .into_response(),
    }
}

async fn live() -> (StatusCode, &'static str) {
    (StatusCode::OK, "ok\n")
}

async fn ready(State(s): State<Services>) -> (StatusCode, &'static str) {
    match s.health.database().await {
        DatabaseHealth::UpToDate => (StatusCode::OK, "ready\n"),
        DatabaseHealth::Pending | DatabaseHealth::Uninitialized => (
            StatusCode::SERVICE_UNAVAILABLE,
            "database migrations pending\n",
        ),
        DatabaseHealth::Unreachable => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n"),
    }
}
