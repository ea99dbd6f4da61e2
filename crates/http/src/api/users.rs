//! `/api/v1/users`: users, the bootstrap of the first admin, application tokens and
//! refresh tokens.

use super::entities::{ApplicationTokenEntity, ErrorEntity, RefreshTokenEntity, UserEntity};
use super::{PageQuery, paginated};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_domain::Error;
use portcullis_domain::time::Timestamp;
use portcullis_service::Services;
use portcullis_service::users::{TokenInput, UserChanges, UserInput};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
pub struct UserFields {
    username: String,
    email: String,
    password: Option<String>,
    display_name: Option<String>,
    /// Bots log in with application tokens only; one named `default` is created.
    #[serde(default)]
    bot: bool,
}

/// `{"user": {...}}`, Portus's body for creating users.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserBody {
    user: UserFields,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UserChangeFields {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
    display_name: Option<String>,
    /// Beyond Portus: promote or demote.
    admin: Option<bool>,
    /// Beyond Portus: enable or disable the account.
    enabled: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UserChangeBody {
    user: UserChangeFields,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenBody {
    /// The token's name, unique per user.
    application: String,
    /// Beyond Portus: the token can only pull.
    #[serde(default)]
    pull_only: bool,
    /// Beyond Portus: Unix seconds after which the token stops working.
    expires_at: Option<i64>,
}

/// List users (admins).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageQuery),
    responses((status = 200, body = [UserEntity]), (status = 401, body = ErrorEntity), (status = 403, body = ErrorEntity)))]
pub async fn list(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Response> {
    let page = s.users.list_users(&me, &q.params()).await?;
    let items = page.items.iter().map(UserEntity::new).collect();
    Ok(paginated("/api/v1/users", &page, items))
}

/// Create a user or a bot (admins).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = UserBody,
    responses((status = 201, body = UserEntity), (status = 403, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn create(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiJson(body): ApiJson<UserBody>,
) -> ApiResult<Response> {
    let f = body.user;
    let input = UserInput {
        username: f.username,
        email: f.email,
        password: f.password,
        display_name: f.display_name,
        bot: f.bot,
        admin: false,
    };
    let (user, token) = s.users.create_user(&me, input).await?;
    let mut e = UserEntity::new(&s.users.listing(user.id).await?);
    e.plain_token = token.map(|t| t.plain);
    Ok((StatusCode::CREATED, Json(e)).into_response())
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct BootstrapEntity {
    id: i64,
    application: String,
    plain_token: String,
}

/// Create the first admin and an application token named `bootstrap` (only while no
/// user exists; 405 when `first_user_admin` is disabled).
#[utoipa::path(post, path = "/api/v1/users/bootstrap", tag = "users", security(()), request_body = UserBody,
    responses((status = 201, body = BootstrapEntity), (status = 400, body = ErrorEntity), (status = 405, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn bootstrap(
    State(s): State<Services>,
    ApiJson(body): ApiJson<UserBody>,
) -> ApiResult<Response> {
    let f = body.user;
    let input = UserInput {
        username: f.username,
        email: f.email,
        password: f.password,
        display_name: f.display_name,
        ..Default::default()
    };
    let (_, token) = s.users.bootstrap(input).await?;
    let e = BootstrapEntity {
        id: token.token.id,
        application: token.token.application,
        plain_token: token.plain,
    };
    Ok((StatusCode::CREATED, Json(e)).into_response())
}

/// A user by numeric id, or else by email (admins).
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path, description = "id or email")),
    responses((status = 200, body = UserEntity), (status = 404, body = ErrorEntity)))]
pub async fn show(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<UserEntity>> {
    Ok(Json(UserEntity::new(&s.users.find_user(&me, &id).await?)))
}

/// Change a user (admins).
#[utoipa::path(put, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), request_body = UserChangeBody,
    responses((status = 200, body = UserEntity), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn update(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UserChangeBody>,
) -> ApiResult<Json<UserEntity>> {
    let f = body.user;
    let changes = UserChanges {
        username: f.username,
        email: f.email,
        password: f.password,
        display_name: f.display_name,
        admin: f.admin,
        enabled: f.enabled,
    };
    Ok(Json(UserEntity::new(
        &s.users.update_user(&me, id, changes).await?,
    )))
}

/// Delete a user (admins; never the last admin).
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn destroy(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    s.users.delete_user(&me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's application tokens (the user, or an admin for a bot).
#[utoipa::path(get, path = "/api/v1/users/{id}/application_tokens", tag = "users", params(("id" = i64, Path)),
    responses((status = 200, body = [ApplicationTokenEntity]), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn list_tokens(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<ApplicationTokenEntity>>> {
    let tokens = s.users.list_application_tokens(&me, id).await?;
    Ok(Json(
        tokens
            .iter()
            .map(|t| ApplicationTokenEntity::new(t, None))
            .collect(),
    ))
}

/// Create an application token; the response carries it once as `plain_token`.
#[utoipa::path(post, path = "/api/v1/users/{id}/application_tokens", tag = "users", params(("id" = i64, Path)), request_body = TokenBody,
    responses((status = 201, body = ApplicationTokenEntity), (status = 403, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn create_token(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<TokenBody>,
) -> ApiResult<Response> {
    let expires_at = match body.expires_at {
        Some(secs) => Some(
            Timestamp::checked_from_secs(secs)
                .ok_or_else(|| Error::Malformed(format!("expires_at {secs} is out of range")))?,
        ),
        None => None,
    };
    let input = TokenInput {
        application: body.application,
        pull_only: body.pull_only,
        expires_at,
    };
    let created = s.users.create_application_token(&me, id, &input).await?;
    Ok((
        StatusCode::CREATED,
        Json(ApplicationTokenEntity::new(
            &created.token,
            Some(created.plain),
        )),
    )
        .into_response())
}

/// Revoke an application token (its owner, or an admin for a bot's token).
#[utoipa::path(delete, path = "/api/v1/users/application_tokens/{id}", tag = "users", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn destroy_token(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    s.users.delete_application_token(&me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Beyond Portus: the refresh (identity) tokens `docker login` stored for a user.
#[utoipa::path(get, path = "/api/v1/users/{id}/refresh_tokens", tag = "users", params(("id" = i64, Path)),
    responses((status = 200, body = [RefreshTokenEntity]), (status = 403, body = ErrorEntity)))]
pub async fn list_refresh_tokens(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<RefreshTokenEntity>>> {
    let tokens = s.users.list_refresh_tokens(&me, id).await?;
    Ok(Json(tokens.iter().map(RefreshTokenEntity::from).collect()))
}

/// Beyond Portus: revoke one device's refresh token.
#[utoipa::path(delete, path = "/api/v1/users/refresh_tokens/{id}", tag = "users", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn destroy_refresh_token(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    s.users.delete_refresh_token(&me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
