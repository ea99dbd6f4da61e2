//! `/api/v1/registries` (admins).

use super::entities::{ErrorEntity, RegistryEntity, ValidationEntity};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, Caller};
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_domain::Error;
use portcullis_service::Services;
use portcullis_service::registries::RegistryInput;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegistryFields {
    name: String,
    /// `host[:port]` Portcullis uses to reach the registry; also the token `service`.
    hostname: String,
    use_ssl: bool,
    /// Another name clients use for the registry.
    external_hostname: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegistryBody {
    registry: RegistryFields,
    /// Skip the reachability check.
    #[serde(default)]
    force: bool,
}

impl From<RegistryFields> for RegistryInput {
    fn from(f: RegistryFields) -> Self {
        RegistryInput {
            name: f.name,
            hostname: f.hostname,
            use_ssl: f.use_ssl,
            external_hostname: f.external_hostname,
        }
    }
}

/// All registries.
#[utoipa::path(get, path = "/api/v1/registries", tag = "registries", responses((status = 200, body = [RegistryEntity]), (status = 403, body = ErrorEntity)))]
pub async fn list(
    State(s): State<Services>,
    Caller(me): Caller,
) -> ApiResult<Json<Vec<RegistryEntity>>> {
    Ok(Json(
        s.registries
            .list_registries(&me)
            .await?
            .iter()
            .map(RegistryEntity::from)
            .collect(),
    ))
}

/// Add a registry; it must answer `GET /v2/` like a v2 registry unless `force`.
#[utoipa::path(post, path = "/api/v1/registries", tag = "registries", request_body = RegistryBody,
    responses((status = 201, body = RegistryEntity), (status = 403, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn create(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiJson(b): ApiJson<RegistryBody>,
) -> ApiResult<Response> {
    let r = s
        .registries
        .create_registry(&me, b.registry.into(), b.force)
        .await?;
    Ok((StatusCode::CREATED, Json(RegistryEntity::from(&r))).into_response())
}

/// Change a registry; a new hostname or scheme is checked for reachability unless `force`.
#[utoipa::path(put, path = "/api/v1/registries/{id}", tag = "registries", params(("id" = i64, Path)), request_body = RegistryBody,
    responses((status = 200, body = RegistryEntity), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn update(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<RegistryBody>,
) -> ApiResult<Json<RegistryEntity>> {
    Ok(Json(RegistryEntity::from(
        &s.registries
            .update_registry(&me, id, b.registry.into(), b.force)
            .await?,
    )))
}

/// Check a registry definition: `name`, `hostname`, `use_ssl`, `external_hostname`,
/// and `only[]` to restrict the fields checked. Messages include reachability.
#[utoipa::path(get, path = "/api/v1/registries/validate", tag = "registries",
    params(("name" = Option<String>, Query), ("hostname" = Option<String>, Query), ("use_ssl" = Option<bool>, Query), ("external_hostname" = Option<String>, Query), ("only[]" = Option<Vec<String>>, Query)),
    responses((status = 200, body = ValidationEntity), (status = 400, body = ErrorEntity)))]
pub async fn validate(
    State(s): State<Services>,
    Caller(me): Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<ValidationEntity>> {
    let mut input = RegistryInput::default();
    let mut only = Vec::new();
    for (k, v) in form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "name" => input.name = v.into_owned(),
            "hostname" => input.hostname = v.into_owned(),
            "use_ssl" => {
                input.use_ssl = match v.as_ref() {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(
                            Error::Malformed(format!("use_ssl is invalid: {other:?}")).into()
                        );
                    }
                }
            }
            "external_hostname" => input.external_hostname = Some(v.into_owned()),
            "only[]" | "only" => only.push(v.into_owned()),
            _ => {}
        }
    }
    let v = s.registries.validate_registry(&me, &input, &only).await?;
    Ok(Json(ValidationEntity {
        valid: v.valid,
        messages: v.messages,
    }))
}
