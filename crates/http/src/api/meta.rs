//! Liveness, health, version and the OpenAPI document.

use crate::extract::{Caller, OptionalCaller};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_service::Services;
use portcullis_service::health::DatabaseHealth;
use serde_json::{Value, json};

/// Liveness: 200 with an empty body.
#[utoipa::path(get, path = "/api/v1/_ping", tag = "meta", security(()), responses((status = 200, description = "alive")))]
pub async fn ping() -> StatusCode {
    StatusCode::OK
}

/// Health of the database, the registries and (with `ldap.enabled`) the LDAP directory;
/// 503 when anything is down. Anonymous callers get the summary (Portus's `database`,
/// `registry` and `ldap` entries); admins also get each registry by hostname with its
/// error, and the directory's. Probes are cached for a few seconds.
#[utoipa::path(get, path = "/api/v1/health", tag = "meta", security((), ("portus_auth" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "all components healthy"), (status = 503, description = "a component is down")))]
pub async fn health(
    State(services): State<Services>,
    OptionalCaller(caller): OptionalCaller,
) -> Response {
    let report = services.health.report().await;
    let database = match report.database {
        DatabaseHealth::UpToDate => json!({"msg": "database is up-to-date", "success": true}),
        DatabaseHealth::Pending => json!({"msg": "database is initializing", "success": false}),
        DatabaseHealth::Uninitialized => {
            json!({"msg": "database has not been created", "success": false})
        }
        DatabaseHealth::Unreachable => {
            json!({"msg": "cannot connect to database", "success": false})
        }
    };
    let registry = match &report.registries {
        None => json!({"msg": "cannot list registries", "success": false}),
        Some(list) if list.is_empty() => json!({"msg": "no registry configured", "success": false}),
        Some(_) if report.registries_reachable() => {
            json!({"msg": "registry is reachable", "success": true})
        }
        Some(_) => json!({"msg": "registry is not reachable", "success": false}),
    };
    let mut body = json!({ "database": database, "registry": registry });
    let admin = caller.as_ref().is_some_and(|c| c.user.admin);
    if let Some(ldap) = &report.ldap {
        body["ldap"] = match ldap {
            Ok(()) => json!({"msg": "LDAP server is reachable", "success": true}),
            // The server's address and its answer are for admins.
            Err(e) if admin => json!({"msg": e, "success": false}),
            Err(_) => json!({"msg": "LDAP server is not reachable", "success": false}),
        };
    }
    if admin && let Some(list) = &report.registries {
        // Portus reported one registry under "registry"; with several, admins see each.
        let each: serde_json::Map<String, Value> = list
            .iter()
            .map(|h| {
                let entry = match &h.status {
                    Ok(()) => json!({"msg": "registry is reachable", "success": true}),
                    Err(e) => json!({"msg": e, "success": false}),
                };
                (h.registry.hostname.clone(), entry)
            })
            .collect();
        body["registries"] = Value::Object(each);
    }
    let status = if report.healthy() {
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
