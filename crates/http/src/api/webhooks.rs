//! `/api/v1/namespaces/:id/webhooks`: webhooks, their headers and deliveries
//! (Portus's UI endpoints, with its bodies: `{"webhook": {…}}`,
//! `{"webhook_header": {…}}`).
//!
//! Differences from Portus: the password and header values are write-only (the
//! entity says whether a password is set); the signing secret is returned once, as
//! `secret`, by create and by `POST …/secret`; re-sending a delivery queues it and
//! answers 202 with the delivery as it stands.

use super::entities::ErrorEntity;
use super::{PageQuery, paginated};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use crate::rfc3339 as time;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_domain::webhooks::{WebhookAttempt, WebhookDelivery, WebhookHeader};
use portcullis_service::Services;
use portcullis_service::webhooks::{WebhookDetails, WebhookInput};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEntity {
    pub id: i64,
    pub namespace_id: i64,
    pub name: String,
    pub url: String,
    /// `GET` or `POST`.
    pub request_method: String,
    /// `application/json` or `application/x-www-form-urlencoded`.
    pub content_type: String,
    pub username: String,
    /// Whether a password is stored; the password itself is never returned.
    pub password_set: bool,
    pub enabled: bool,
    /// Beyond Portus: the registry actions that fire it (`push`, `delete`).
    pub actions: Vec<String>,
    /// Beyond Portus: repositories (names inside the namespace) that fire it.
    pub repository_glob: String,
    pub created_at: String,
    pub updated_at: String,
    pub updatable: bool,
    pub destroyable: bool,
}

impl From<&WebhookDetails> for WebhookEntity {
    fn from(d: &WebhookDetails) -> Self {
        let w = &d.webhook;
        Self {
            id: w.id,
            namespace_id: w.namespace_id,
            name: w.name.clone(),
            url: w.url.clone(),
            request_method: w.request_method.as_str().to_owned(),
            content_type: w.content_type.as_str().to_owned(),
            username: w.username.clone(),
            password_set: w.password_set,
            enabled: w.enabled,
            actions: w.actions.iter().map(|a| a.as_str().to_owned()).collect(),
            repository_glob: w.repository_glob.clone(),
            created_at: time(w.created_at),
            updated_at: time(w.updated_at),
            updatable: d.updatable,
            destroyable: d.destroyable,
        }
    }
}

/// The answer to create: the webhook and its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhookEntity {
    #[serde(flatten)]
    pub webhook: WebhookEntity,
    /// HMAC-SHA256 key of `X-Portcullis-Signature`; not shown again.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretEntity {
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookHeaderEntity {
    pub id: i64,
    pub webhook_id: i64,
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&WebhookHeader> for WebhookHeaderEntity {
    fn from(h: &WebhookHeader) -> Self {
        Self {
            id: h.id,
            webhook_id: h.webhook_id,
            name: h.name.clone(),
            created_at: time(h.created_at),
            updated_at: time(h.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryEntity {
    pub id: i64,
    pub uuid: String,
    pub webhook_id: i64,
    /// The registry event id.
    pub event_id: String,
    /// HTTP status of the latest attempt (0 when no response arrived, as Portus;
    /// null before the first attempt).
    pub status: Option<i64>,
    pub success: bool,
    pub attempts: i64,
    pub error: Option<String>,
    pub request_header: String,
    pub request_body: String,
    pub response_header: String,
    pub response_body: String,
    pub duration_ms: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&WebhookDelivery> for WebhookDeliveryEntity {
    fn from(d: &WebhookDelivery) -> Self {
        Self {
            id: d.id,
            uuid: d.uuid.clone(),
            webhook_id: d.webhook_id,
            event_id: d.event_id.clone(),
            status: match (d.status, d.attempts) {
                (None, 0) => None,
                (s, _) => Some(s.unwrap_or(0)),
            },
            success: d.succeeded(),
            attempts: d.attempts,
            error: d.error.clone(),
            request_header: d.request_header.clone(),
            request_body: d.request_body.clone(),
            response_header: d.response_header.clone(),
            response_body: d.response_body.clone(),
            duration_ms: d.duration_ms,
            created_at: time(d.created_at),
            updated_at: time(d.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAttemptEntity {
    /// 1 for the first attempt.
    pub attempt: i64,
    /// 0 when no response arrived.
    pub status: i64,
    pub error: Option<String>,
    pub request_header: String,
    pub request_body: String,
    pub response_header: String,
    pub response_body: String,
    pub duration_ms: i64,
    pub created_at: String,
}

impl From<&WebhookAttempt> for WebhookAttemptEntity {
    fn from(a: &WebhookAttempt) -> Self {
        Self {
            attempt: a.attempt,
            status: a.status.unwrap_or(0),
            error: a.error.clone(),
            request_header: a.request_header.clone(),
            request_body: a.request_body.clone(),
            response_header: a.response_header.clone(),
            response_body: a.response_body.clone(),
            duration_ms: a.duration_ms,
            created_at: time(a.created_at),
        }
    }
}

/// A delivery with every attempt, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryDetailsEntity {
    #[serde(flatten)]
    pub delivery: WebhookDeliveryEntity,
    pub attempt_log: Vec<WebhookAttemptEntity>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookFields {
    name: Option<String>,
    url: Option<String>,
    /// `GET` (default) or `POST`.
    request_method: Option<String>,
    /// `application/json` (default) or `application/x-www-form-urlencoded`.
    content_type: Option<String>,
    username: Option<String>,
    /// Write-only. On update an empty string removes it.
    password: Option<String>,
    /// New webhooks are disabled unless `true` (Portus).
    enabled: Option<bool>,
    /// Default `["push", "delete"]`.
    actions: Option<Vec<String>>,
    /// Default `*`.
    repository_glob: Option<String>,
}

impl From<WebhookFields> for WebhookInput {
    fn from(f: WebhookFields) -> Self {
        Self {
            name: f.name,
            url: f.url,
            request_method: f.request_method,
            content_type: f.content_type,
            username: f.username,
            password: f.password,
            enabled: f.enabled,
            actions: f.actions,
            repository_glob: f.repository_glob,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct WebhookBody {
    webhook: WebhookFields,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderFields {
    name: String,
    /// Write-only: stored encrypted, never returned.
    value: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct HeaderBody {
    webhook_header: HeaderFields,
}

fn list_path(ns: i64) -> String {
    format!("/api/v1/namespaces/{ns}/webhooks")
}

/// The webhooks of a namespace (admins and members of its team).
#[utoipa::path(get, path = "/api/v1/namespaces/{id}/webhooks", tag = "webhooks", params(("id" = i64, Path), PageQuery),
    responses((status = 200, body = [WebhookEntity]), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn list(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(ns): ApiPath<i64>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Response> {
    let page = s.webhooks.list(&me, ns, &q.params()).await?;
    let items: Vec<WebhookEntity> = page.items.iter().map(WebhookEntity::from).collect();
    Ok(paginated(&list_path(ns), &page, items))
}

/// Create a webhook (admins; owners when `user_permission.create_webhook`). The answer
/// carries the signing secret, shown this once.
#[utoipa::path(post, path = "/api/v1/namespaces/{id}/webhooks", tag = "webhooks", params(("id" = i64, Path)), request_body = WebhookBody,
    responses((status = 201, body = CreatedWebhookEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn create(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(ns): ApiPath<i64>,
    ApiJson(b): ApiJson<WebhookBody>,
) -> ApiResult<Response> {
    let (details, secret) = s.webhooks.create(&me, ns, &b.webhook.into()).await?;
    let body = CreatedWebhookEntity {
        webhook: WebhookEntity::from(&details),
        secret,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A webhook.
#[utoipa::path(get, path = "/api/v1/namespaces/{id}/webhooks/{webhook_id}", tag = "webhooks", params(("id" = i64, Path), ("webhook_id" = i64, Path)),
    responses((status = 200, body = WebhookEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn show(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath((ns, id)): ApiPath<(i64, i64)>,
) -> ApiResult<Json<WebhookEntity>> {
    Ok(Json(WebhookEntity::from(
        &s.webhooks.show(&me, ns, id).await?,
    )))
}

/// Change a webhook (admins; owners when `user_permission.manage_webhook`). Only the
/// fields given change.
#[utoipa::path(put, path = "/api/v1/namespaces/{id}/webhooks/{webhook_id}", tag = "webhooks", params(("id" = i64, Path), ("webhook_id" = i64, Path)), request_body = WebhookBody,
    responses((status = 200, body = WebhookEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn update(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath((ns, id)): ApiPath<(i64, i64)>,
    ApiJson(b): ApiJson<WebhookBody>,
) -> ApiResult<Json<WebhookEntity>> {
    Ok(Json(WebhookEntity::from(
        &s.webhooks.update(&me, ns, id, &b.webhook.into()).await?,
    )))
}

/// Switch a webhook on or off (Portus's `toggle_enabled`).
#[utoipa::path(put, path = "/api/v1/namespaces/{id}/webhooks/{webhook_id}/toggle_enabled", tag = "webhooks", params(("id" = i64, Path), ("webhook_id" = i64, Path)),
    responses((status = 200, body = WebhookEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn toggle_enabled(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath((ns, id)): ApiPath<(i64, i64)>,
) -> ApiResult<Json<WebhookEntity>> {
    let current = s.webhooks.show(&me, ns, id).await?;
    let changes = WebhookInput {
        enabled: Some(!current.webhook.enabled),
        ..WebhookInput::default()
    };
    Ok(Json(WebhookEntity::from(
        &s.webhooks.update(&me, ns, id, &changes).await?,
    )))
}

/// Delete a webhook with its headers and deliveries (admins; owners when
/// `user_permission.create_webhook`).
#[utoipa::path(delete, path = "/api/v1/namespaces/{id}/webhooks/{webhook_id}", tag = "webhooks", params(("id" = i64, Path), ("webhook_id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn destroy(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath((ns, id)): ApiPath<(i64, i64)>,
) -> ApiResult<StatusCode> {
    s.webhooks.delete(&me, ns, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the signing secret; the new one is shown this once.
#[utoipa::path(post, path = "/api/v1/namespaces/{id}/webhooks/{webhook_id}/secret", tag = "webhooks", params(("id" = i64, Path), ("webhook_id" = i64, Path)),
    responses((status = 200, body = SecretEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn rotate_secret(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath((ns, id)): ApiPath<(i64, i64)>,
) -> ApiResult<Json<SecretEntity>> {
    Ok(Json(SecretEntity {
        secret: s.webhooks.rotate_secret(&me, ns, id).await?,
    }))
}

/// The custom headers of a webhook (names only: values are never returned).
#[utoipa::path(get, path = "/api/v1/namespaces/{id}/webhooks/{webhook_id}/headers", tag = "webhooks", params(("id" = i64, Path), ("webhook_id" = i64, Path)),
    responses((status = 200, body = [WebhookHeaderEntity]), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn headers(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath((ns, id)): ApiPath<(i64, i64)>,
) -> ApiResult<Json<Vec<WebhookHeaderEntity>>> {
    let headers = s.webhooks.headers(&me, ns, id).await?;
    Ok(Json(
        headers.iter().map(WebhookHeaderEntity::from).collect(),
    ))
}

/// Add a custom header (sent with every delivery; a name once per webhook).
#[utoipa::path(post, path = "/api/v1/namespaces/{id}/webhooks/{webhook_id}/headers", tag = "webhooks", params(("id" = i64, Path), ("webhook_id" = i64, Path)), request_body = HeaderBody,
    responses((status = 201, body = WebhookHeaderEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn create_header(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath((ns, id)): ApiPath<(i64, i64)>,
    ApiJson(b): ApiJson<HeaderBody>,
) -> ApiResult<Response> {
    let h = b.webhook_header;
    let header = s
        .webhooks
        .create_header(&me, ns, id, &h.name, &h.value)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookHeaderEntity::from(&header)),
    )
        .into_response())
}

/// Remove a custom header.
#[utoipa::path(delete, path = "/api/v1/namespaces/{id}/webhooks/{webhook_id}/headers/{header_id}", tag = "webhooks", params(("id" = i64, Path), ("webhook_id" = i64, Path), ("header_id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn destroy_header(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath((ns, id, header_id)): ApiPath<(i64, i64, i64)>,
) -> ApiResult<StatusCode> {
    s.webhooks.delete_header(&me, ns, id, header_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The deliveries of a webhook, each with its latest attempt (newest kept:
/// `webhooks.history`).
#[utoipa::path(get, path = "/api/v1/namespaces/{id}/webhooks/{webhook_id}/deliveries", tag = "webhooks", params(("id" = i64, Path), ("webhook_id" = i64, Path), PageQuery),
    responses((status = 200, body = [WebhookDeliveryEntity]), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn deliveries(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath((ns, id)): ApiPath<(i64, i64)>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Response> {
    let page = s.webhooks.deliveries(&me, ns, id, &q.params()).await?;
    let items: Vec<WebhookDeliveryEntity> =
        page.items.iter().map(WebhookDeliveryEntity::from).collect();
    Ok(paginated(
        &format!("{}/{id}/deliveries", list_path(ns)),
        &page,
        items,
    ))
}

/// A delivery with every attempt.
#[utoipa::path(get, path = "/api/v1/namespaces/{id}/webhooks/{webhook_id}/deliveries/{delivery_id}", tag = "webhooks", params(("id" = i64, Path), ("webhook_id" = i64, Path), ("delivery_id" = i64, Path)),
    responses((status = 200, body = WebhookDeliveryDetailsEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn delivery(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath((ns, id, delivery_id)): ApiPath<(i64, i64, i64)>,
) -> ApiResult<Json<WebhookDeliveryDetailsEntity>> {
    let (d, attempts) = s.webhooks.delivery(&me, ns, id, delivery_id).await?;
    Ok(Json(WebhookDeliveryDetailsEntity {
        delivery: WebhookDeliveryEntity::from(&d),
        attempt_log: attempts.iter().map(WebhookAttemptEntity::from).collect(),
    }))
}

/// Send a delivery again with the webhook's current settings. Queued: the answer is
/// the delivery before the new attempt.
#[utoipa::path(put, path = "/api/v1/namespaces/{id}/webhooks/{webhook_id}/deliveries/{delivery_id}", tag = "webhooks", params(("id" = i64, Path), ("webhook_id" = i64, Path), ("delivery_id" = i64, Path)),
    responses((status = 202, body = WebhookDeliveryEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn resend(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath((ns, id, delivery_id)): ApiPath<(i64, i64, i64)>,
) -> ApiResult<Response> {
    let d = s.webhooks.resend(&me, ns, id, delivery_id).await?;
    Ok((StatusCode::ACCEPTED, Json(WebhookDeliveryEntity::from(&d))).into_response())
}
