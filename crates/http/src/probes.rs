//! Probes for load balancers and orchestrators, outside the Portus API:
//! `/livez` answers while the process serves requests (it touches nothing), `/readyz`
//! while it can also do its work: the database answers and is migrated. Registries
//! do not count: a registry outage must not take Portcullis out of a load balancer
//! (`/api/v1/health` reports them).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use portcullis_service::Services;
use portcullis_service::health::DatabaseHealth;

pub fn router() -> Router<Services> {
    Router::new()
        .route("/livez", get(live))
        .route("/readyz", get(ready))
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
