//! `/api/v1/namespaces`.

use super::entities::{ErrorEntity, NamespaceEntity, ValidationEntity};
use super::{PageQuery, paginated};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_service::Services;
use portcullis_service::namespaces::NamespaceChanges;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// Namespaces the caller can see (admins: all).
#[utoipa::path(get, path = "/api/v1/namespaces", tag = "namespaces", params(PageQuery), responses((status = 200, body = [NamespaceEntity])))]
pub async fn list(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Response> {
    let page = s.namespaces.list_namespaces(&me, &q.params()).await?;
    let items: Vec<NamespaceEntity> = page.items.iter().map(NamespaceEntity::from).collect();
    Ok(paginated("/api/v1/namespaces", &page, items))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ValidateQuery {
    /// The name to check.
    name: String,
    /// Beyond Portus: the registry to check in (default: the only one).
    registry_id: Option<i64>,
}

/// Whether a namespace name is valid and free.
#[utoipa::path(get, path = "/api/v1/namespaces/validate", tag = "namespaces", params(ValidateQuery), responses((status = 200, body = ValidationEntity)))]
pub async fn validate(
    State(s): State<Services>,
    Caller(_caller): Caller,
    ApiQuery(q): ApiQuery<ValidateQuery>,
) -> ApiResult<Json<ValidationEntity>> {
    let v = s
        .namespaces
        .validate_namespace(&q.name, q.registry_id)
        .await?;
    Ok(Json(ValidationEntity {
        valid: v.valid,
        messages: v.messages,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateNamespace {
    name: String,
    /// Name of the owning team.
    team: String,
    #[serde(default)]
    description: String,
    /// Beyond Portus: required when several registries exist.
    registry_id: Option<i64>,
}

/// Create a (private) namespace in a team.
#[utoipa::path(post, path = "/api/v1/namespaces", tag = "namespaces", request_body = CreateNamespace,
    responses((status = 201, body = NamespaceEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn create(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiJson(b): ApiJson<CreateNamespace>,
) -> ApiResult<Response> {
    let d = s
        .namespaces
        .create_namespace(&me, &b.name, &b.team, &b.description, b.registry_id)
        .await?;
    Ok((StatusCode::CREATED, Json(NamespaceEntity::from(&d))).into_response())
}

/// A namespace.
#[utoipa::path(get, path = "/api/v1/namespaces/{id}", tag = "namespaces", params(("id" = i64, Path)),
    responses((status = 200, body = NamespaceEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn show(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<NamespaceEntity>> {
    Ok(Json(NamespaceEntity::from(
        &s.namespaces.show_namespace(&me, id).await?,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NamespaceFields {
    name: Option<String>,
    description: Option<String>,
    /// Name of the team to move the namespace to.
    team: Option<String>,
    /// `private`, `protected` or `public`.
    visibility: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateNamespace {
    namespace: NamespaceFields,
}

/// Change name, description, team or visibility.
#[utoipa::path(put, path = "/api/v1/namespaces/{id}", tag = "namespaces", params(("id" = i64, Path)), request_body = UpdateNamespace,
    responses((status = 200, body = NamespaceEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn update(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<UpdateNamespace>,
) -> ApiResult<Json<NamespaceEntity>> {
    let f = b.namespace;
    let changes = NamespaceChanges {
        name: f.name,
        description: f.description,
        team: f.team,
        visibility: f.visibility,
    };
    Ok(Json(NamespaceEntity::from(
        &s.namespaces.update_namespace(&me, id, changes).await?,
    )))
}

/// Delete a namespace (never a personal or the global one).
#[utoipa::path(delete, path = "/api/v1/namespaces/{id}", tag = "namespaces", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn destroy(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    s.namespaces.delete_namespace(&me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
