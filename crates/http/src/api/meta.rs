//! Liveness, health, version and the OpenAPI document.

use crate::extract::Caller;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_service::Services;
use portcullis_storage::MigrationState;
use serde_json::{Value, json};

/// Liveness: 200 with an empty body.
#[utoipa::path(get, path = "/api/v1/_ping", tag = "meta", security(()), responses((status = 200, description = "alive")))]
pub async fn ping() -> StatusCode {
    StatusCode::OK
}

/// Health of the database and of every registry; 503 when anything is down.
#[utoipa::path(get, path = "/api/v1/health", tag = "meta", security(()),
    responses((status = 200, description = "all components healthy"), (status = 503, description = "a component is down")))]
pub async fn health(State(services): State<Services>) -> Response {
    let mut ok = true;
    let database = match services.store.migration_state().await {
        Ok(MigrationState::UpToDate) => json!({"msg": "database is up-to-date", "success": true}),
        Ok(MigrationState::Pending) => {
            ok = false;
            json!({"msg": "database is initializing", "success": false})
        }
        Ok(MigrationState::Uninitialized) => {
            ok = false;
            json!({"msg": "database has not been created", "success": false})
        }
        Err(_) => {
            ok = false;
            json!({"msg": "cannot connect to database", "success": false})
        }
    };
    let mut body = json!({ "database": database });
    match services.registry_health().await {
        Ok(registries) if registries.is_empty() => {
            ok = false;
            body["registry"] = json!({"msg": "no registry configured", "success": false});
        }
        Ok(registries) => {
            // Portus reported one registry under "registry"; with several, each is listed
            // under "registries" and "registry" sums them up.
            let mut each = serde_json::Map::new();
            let mut all_ok = true;
            for (r, status) in &registries {
                let entry = match status {
                    Ok(()) => json!({"msg": "registry is reachable", "success": true}),
                    Err(e) => {
                        all_ok = false;
                        json!({"msg": e, "success": false})
                    }
                };
                each.insert(r.hostname.clone(), entry);
            }
            ok &= all_ok;
            body["registry"] = if all_ok {
                json!({"msg": "registry is reachable", "success": true})
            } else {
                json!({"msg": "registry is not reachable", "success": false})
            };
            body["registries"] = Value::Object(each);
        }
        Err(_) => {
            ok = false;
            body["registry"] = json!({"msg": "cannot list registries", "success": false});
        }
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// API and server versions.
#[utoipa::path(get, path = "/api/version", tag = "meta", responses((status = 200, description = "versions"), (status = 401, description = "not authenticated")))]
pub async fn version(Caller(_caller): Caller) -> Json<Value> {
    Json(json!({
        "api-versions": ["v1"],
        "git": null,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/api/openapi-spec", tag = "meta", security(()), responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi_spec() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi())
}
